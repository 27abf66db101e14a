import { z } from 'zod';
import { AoError } from '@ao/graphs';
import { payloadField } from '../envelope/mod.js';
import type { Envelope } from '../envelope/mod.js';
import { setAt } from './journal-format.js';
import type { PackedPayload, Ref, Refs } from './journal-format.js';
import { packAdded } from './turns.js';
import type { StoredTurn, TurnExtras, UsedTool } from './turns.js';
import type { OriginalTurns, SharedTurn } from './shared-turns.js';

/**
 * An agent's model requests carry its whole conversation: turn k's `llm.request` holds every
 * message of turns 1..k, so a log that keeps each request whole grows with the square of the
 * conversation (issue 22). The store keeps a request that continues the same actor's previous
 * one as a turn record of its row (./turns.ts): the messages it keeps of the previous request's,
 * and those it adds; the payload refers to the record. Reads rebuild the whole array, in seq order
 * (a read that starts after the actor's first request reads the run's earlier rows first). Only
 * the stored form changes: the bus, the API, replay and the request's hash see whole requests.
 *
 * The previous request of each actor is known from this process's own commits (the store keeps
 * a copy of its messages array while the run is active), or from a resume that read the actor's
 * records (`prime`); otherwise the next request is stored whole, and deltas go on from it.
 *
 * Rows written before turn records hold a request's messages as `{ base, keep, add }` in its
 * payload (the first `keep` messages of the request at seq `base`, then `add`): still read.
 */
const SeqDeltaSchema = z.object({ base: z.number().int().positive(), keep: z.number().int().nonnegative(), add: z.array(z.unknown()) });
/** A request's messages as a row with turn records gives them back (see `unpackRow`): on the actor's previous request. */
const ActorDeltaSchema = z.object({ prev: z.string(), keep: z.number().int().nonnegative(), add: z.array(z.unknown()) });

export interface LastRequest {
  seq: number;
  messages: readonly unknown[];
  /** The tool calls of the actor's turn records so far, in order (what its output lists, if it ends now). */
  used?: readonly UsedTool[];
}

/** A node's output as its last `node.completed` (this process committed) holds it: that envelope's id, and the output's JSON. */
interface OutputAt {
  id: string;
  json: string;
}

/** What this process knows of a run's payloads, which its next commits refer to. */
interface RunMemory {
  actors: Map<string, LastRequest>;
  outputs: Map<string, OutputAt>;
  /** The run's input as its `run.started` holds it (every node's context carries it again). */
  input?: OutputAt;
}

/** A value whose JSON is shorter than this is stored again rather than referred to (a reference costs about 60 bytes). */
const MIN_REF_CHARS = 160;

const same = (a: unknown, b: unknown) => a === b || JSON.stringify(a) === JSON.stringify(b);

/** The last request of each actor (and the last output of each node) of each recent run, as committed by this process. */
export class RequestHistories {
  private readonly runs = new Map<string, RunMemory>();

  constructor(private readonly maxRuns = 500) {}

  /**
   * What one commit of `runId` stores (its turn records, and its payloads referring to them);
   * `extras` by request envelope id; `original`: the records of the run it replays, which its own
   * may name instead of holding the same messages again (see shared-turns.ts).
   */
  packer(runId: string, extras?: ReadonlyMap<string, TurnExtras>, original?: OriginalTurns): HistoryPacker {
    return new HistoryPacker(this.runs.get(runId), extras, original);
  }

  /** The commit landed: its requests and outputs are the ones the next commits continue and refer to. */
  landed(runId: string, p: HistoryPacker): void {
    if (!p.updates.size && !p.outputs.size && !p.input) return;
    const run = this.run(runId);
    for (const [actor, last] of p.updates) run.actors.set(actor, last);
    for (const [node, out] of p.outputs) run.outputs.set(node, out);
    if (p.input) run.input = p.input;
  }

  /** What the actors' last requests were (read back by a resume), unless this process knows later ones. */
  prime(runId: string, last: ReadonlyMap<string, LastRequest>): void {
    const known = this.runs.get(runId);
    const later = [...last].filter(([actor, l]) => (known?.actors.get(actor)?.seq ?? 0) < l.seq);
    if (!later.length) return;
    const run = this.run(runId);
    for (const [actor, l] of later) run.actors.set(actor, l);
  }

  private run(runId: string): RunMemory {
    let run = this.runs.get(runId);
    if (!run) {
      if (this.runs.size >= this.maxRuns) this.runs.delete(this.runs.keys().next().value!);
      run = { actors: new Map(), outputs: new Map() };
      this.runs.set(runId, run);
    }
    return run;
  }

  /** The run ended (or its host let it go): nothing more to continue. */
  forget(runId: string): void {
    this.runs.delete(runId);
  }
}

/** How one journal row stores its payloads: its turn records, and the parts of payloads held elsewhere. */
export interface RowPlan {
  pack(json: string, env: Envelope): PackedPayload;
  /** The row's turn records as JSON (undefined: none). */
  turns: string | undefined;
}

export class HistoryPacker {
  readonly updates = new Map<string, LastRequest>();
  readonly outputs = new Map<string, OutputAt>();
  input: OutputAt | undefined;

  constructor(
    private readonly known: RunMemory | undefined,
    private readonly extras?: ReadonlyMap<string, TurnExtras>,
    private readonly original?: OriginalTurns,
  ) {}

  /** The run's last `node.completed` of `node` this process knows of (this commit's, or one landed): its id and output's JSON. */
  outputOf(node: string): OutputAt | undefined {
    return this.outputs.get(node) ?? this.known?.outputs.get(node);
  }

  private last(actor: string): LastRequest | undefined {
    return this.updates.get(actor) ?? this.known?.actors.get(actor);
  }

  /**
   * Plan one row (one run's envelopes of a commit, in seq order): each request that continues its
   * actor's previous one, or whose agent adds to it (`extras`), gets a turn record; a tool result
   * whose outcome one of the row's records holds refers to it; a node's output lists the tool
   * calls of its actor's records by reference; the run's output refers to its nodes' outputs.
   */
  row(events: readonly Envelope[]): RowPlan {
    const records: Array<StoredTurn | SharedTurn> = [];
    const refs = new Map<Envelope, Refs>();
    const refer = (env: Envelope, path: string[], ref: Ref) => refs.set(env, [...(refs.get(env) ?? []), [path, ref]]);
    for (const env of events) {
      if (env.type === 'llm.request') this.request(env, records, refer);
      else if (env.type === 'node.completed') this.completed(env, refer);
      else if (env.type === 'node.start' || env.type === 'branch.start') this.started(env, refer);
      else if (env.type === 'run.started') this.begun(env);
      else if (env.type === 'run.finished') this.finished(env, refer);
    }
    this.outcomes(events, records, refer);
    return {
      turns: records.length ? JSON.stringify(records) : undefined,
      pack: (json, env) => {
        const r = refs.get(env);
        if (!r) return json;
        // The payload without what is held elsewhere: `0` in each such place.
        return { json: JSON.stringify(r.reduce<unknown>((p, [path]) => setAt(p, path, 0), env.payload)), refs: r };
      },
    };
  }

  /**
   * Tool results whose outcome one of the row's records holds refer to it (each taken once); in a
   * replay, those whose outcome a record of its original holds refer to that one.
   */
  private outcomes(
    events: readonly Envelope[],
    records: ReadonlyArray<StoredTurn | SharedTurn>,
    refer: (env: Envelope, path: string[], ref: Ref) => void,
  ): void {
    let outcomes: Map<string, Array<[number, number]>> | undefined;
    for (const env of events) {
      if (env.type !== 'tool.result') continue;
      const field = payloadField(env.payload, 'ok') === true ? 'result' : 'error';
      const value = payloadField(env.payload, field);
      if (value === undefined) continue;
      const json = JSON.stringify(value);
      if (records.some((r) => r.u)) {
        if (!outcomes) {
          outcomes = new Map();
          records.forEach((r, i) =>
            r.u?.forEach((u, j) => {
              const json = JSON.stringify(u.result);
              if (json !== undefined) outcomes!.set(json, [...(outcomes!.get(json) ?? []), [i, j]]);
            }),
          );
        }
        const at = outcomes.get(json)?.shift();
        if (at) {
          refer(env, [field], ['u', at[0], at[1]]);
          continue;
        }
      }
      const held = json.length >= MIN_REF_CHARS ? this.original?.outcome(json) : undefined;
      if (held) refer(env, [field], ['o', this.original!.runId, held[0], held[1]]);
    }
  }

  private request(env: Envelope, records: Array<StoredTurn | SharedTurn>, refer: (env: Envelope, path: string[], ref: Ref) => void): void {
    const messages = payloadField(env.payload, 'messages');
    if (!Array.isArray(messages)) return;
    const extras = this.extras?.get(env.id);
    const prev = this.last(env.from);
    let keep = 0;
    if (prev && prev.seq < env.seq) {
      const max = Math.min(prev.messages.length, messages.length);
      while (keep < max && same(prev.messages[keep], messages[keep])) keep++;
    }
    const used = extras?.used?.length ? extras.used : undefined;
    // A copy: the actor may push to its array after this request.
    this.updates.set(env.from, { seq: env.seq, messages: [...messages], ...(prev?.used || used ? { used: [...(prev?.used ?? []), ...(used ?? [])] } : {}) });
    if (keep === 0 && !extras) return;
    const record: StoredTurn = {
      a: env.from,
      q: env.seq,
      k: keep,
      m: packAdded(messages.slice(keep), used),
      ...(used ? { u: used } : {}),
      ...(extras?.state ? { s: extras.state } : {}),
    };
    // A replay's record that adds what its original's did names that record (a tool result of the row then stays in its payload).
    records.push(this.original?.share(record) ?? record);
    refer(env, ['messages'], ['m', records.length - 1]);
  }

  /** A node's output: its tool calls are its actor's records' (when they are all of them), and it is what the run's output refers to. */
  private completed(env: Envelope, refer: (env: Envelope, path: string[], ref: Ref) => void): void {
    const node = payloadField(env.payload, 'node');
    const output = payloadField(env.payload, 'output');
    if (typeof node !== 'string' || typeof output !== 'object' || output === null) return;
    const tools = payloadField(output, 'tools');
    const used = this.last(env.from)?.used;
    if (Array.isArray(tools) && tools.length && used?.length === tools.length && JSON.stringify(used) === JSON.stringify(tools))
      refer(env, ['output', 'tools'], ['t', env.from, used.length]);
    this.outputs.set(node, { id: env.id, json: JSON.stringify(output) });
  }

  /** The run's input, which every node's context repeats. */
  private begun(env: Envelope): void {
    const input = payloadField(env.payload, 'input');
    if (input !== undefined) this.input = { id: env.id, json: JSON.stringify(input) };
  }

  /**
   * A node's context: the run's input and the outputs of the nodes before it, each held by an
   * envelope of an earlier commit (a row is deflated whole, so what the same row holds twice costs
   * little, but a row cannot refer back to another: there a reference is what saves the bytes).
   */
  private started(env: Envelope, refer: (env: Envelope, path: string[], ref: Ref) => void): void {
    const context = payloadField(env.payload, 'context');
    if (typeof context !== 'object' || context === null) return;
    const input = this.known?.input;
    const given = payloadField(context, 'input');
    if (input && input.json.length >= MIN_REF_CHARS && given !== undefined && JSON.stringify(given) === input.json)
      refer(env, ['context', 'input'], ['e', input.id, 'input']);
    const outputs = payloadField(context, 'outputs');
    if (typeof outputs !== 'object' || outputs === null || Array.isArray(outputs)) return;
    for (const [node, out] of Object.entries(outputs)) {
      if (this.outputs.has(node)) continue;
      const at = this.known?.outputs.get(node);
      if (at && at.json.length >= MIN_REF_CHARS && JSON.stringify(out) === at.json) refer(env, ['context', 'outputs', node], ['e', at.id, 'output']);
    }
  }

  /** The run's output: each node's, when it is that node's last `node.completed`'s. */
  private finished(env: Envelope, refer: (env: Envelope, path: string[], ref: Ref) => void): void {
    const output = payloadField(env.payload, 'output');
    if (typeof output !== 'object' || output === null || Array.isArray(output)) return;
    for (const [node, out] of Object.entries(output)) {
      const at = this.outputs.get(node) ?? this.known?.outputs.get(node);
      if (at && JSON.stringify(out) === at.json) refer(env, ['output', node], ['e', at.id, 'output']);
    }
  }
}

/**
 * Rebuild the requests of `envs` (in seq order, of any runs) whose messages are stored as deltas,
 * with the whole messages of earlier requests in `bases` (`run/seq` and `run#actor`; filled as it
 * goes). Returns the rebuilt envelopes, or the runs whose bases are not among them (read their
 * earlier rows first).
 */
export function rebuildRequests(envs: readonly Envelope[], bases: Map<string, readonly unknown[]>): { envelopes: Envelope[]; missing: Set<string> } {
  const missing = new Set<string>();
  const envelopes = envs.map((env) => {
    if (env.type !== 'llm.request') return env;
    const stored = payloadField(env.payload, 'messages');
    if (stored === undefined) return env;
    let messages: readonly unknown[] | undefined;
    if (Array.isArray(stored)) messages = stored;
    else {
      // Requests are made with an array (the LLM port's schema); anything else was stored as it came.
      const byActor = ActorDeltaSchema.safeParse(stored);
      const bySeq = byActor.success ? undefined : SeqDeltaSchema.safeParse(stored);
      if (!byActor.success && !bySeq?.success) return env;
      const d = byActor.success ? byActor.data : bySeq!.data!;
      // Keeping nothing, it needs no base (an agent's first request, whose record starts its conversation).
      const base = d.keep === 0 ? [] : bases.get(byActor.success ? `${env.runId}#${byActor.data.prev}` : `${env.runId}/${bySeq!.data!.base}`);
      if (!base) {
        missing.add(env.runId);
        // Its actor's later requests continue this one, not what came before it.
        bases.delete(`${env.runId}#${env.from}`);
        return env;
      }
      if (d.keep > base.length)
        throw new AoError(
          'AO_STORE_CORRUPT',
          `llm.request at seq ${env.seq} of run ${env.runId} keeps ${d.keep} messages of a request that has ${base.length}`,
        );
      messages = [...base.slice(0, d.keep), ...d.add];
    }
    bases.set(`${env.runId}/${env.seq}`, messages);
    bases.set(`${env.runId}#${env.from}`, messages);
    const payload = env.payload;
    // An object: it holds `messages`.
    return messages === stored || typeof payload !== 'object' || payload === null ? env : { ...env, payload: { ...payload, messages } };
  });
  return { envelopes, missing };
}
