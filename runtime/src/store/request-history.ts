import { z } from 'zod';
import { AoError } from '@ao/graphs';
import type { Envelope } from '../envelope/mod.js';
import type { PackedPayload, Refs } from './journal-format.js';
import { packAdded } from './turns.js';
import type { StoredTurn, TurnExtras } from './turns.js';

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
}

const same = (a: unknown, b: unknown) => a === b || JSON.stringify(a) === JSON.stringify(b);

/** The last request of each actor of each recent run, as committed by this process. */
export class RequestHistories {
  private readonly runs = new Map<string, Map<string, LastRequest>>();

  constructor(private readonly maxRuns = 500) {}

  /** What one commit of `runId` stores (its turn records, and its payloads referring to them); `extras` by request envelope id. */
  packer(runId: string, extras?: ReadonlyMap<string, TurnExtras>): HistoryPacker {
    return new HistoryPacker(this.runs.get(runId), extras);
  }

  /** The commit landed: its requests are the ones the next commits continue. */
  landed(runId: string, p: HistoryPacker): void {
    this.set(runId, p.updates);
  }

  /** What the actors' last requests were (read back by a resume), unless this process knows later ones. */
  prime(runId: string, last: ReadonlyMap<string, LastRequest>): void {
    const known = this.runs.get(runId);
    this.set(runId, new Map([...last].filter(([actor, l]) => (known?.get(actor)?.seq ?? 0) < l.seq)));
  }

  private set(runId: string, updates: ReadonlyMap<string, LastRequest>): void {
    if (!updates.size) return;
    let run = this.runs.get(runId);
    if (!run) {
      if (this.runs.size >= this.maxRuns) this.runs.delete(this.runs.keys().next().value!);
      run = new Map();
      this.runs.set(runId, run);
    }
    for (const [actor, last] of updates) run.set(actor, last);
  }

  /** The run ended (or its host let it go): nothing more to continue. */
  forget(runId: string): void {
    this.runs.delete(runId);
  }
}

/** How one journal row stores its payloads: its turn records, and the payload fields they hold. */
export interface RowPlan {
  pack(json: string, env: Envelope): PackedPayload;
  /** The row's turn records as JSON (undefined: none, a format-2 row). */
  turns: string | undefined;
}

export class HistoryPacker {
  readonly updates = new Map<string, LastRequest>();

  constructor(
    private readonly known: ReadonlyMap<string, LastRequest> | undefined,
    private readonly extras?: ReadonlyMap<string, TurnExtras>,
  ) {}

  /**
   * Plan one row (one run's envelopes of a commit, in seq order): each request that continues its
   * actor's previous one, or whose agent adds to it (`extras`), gets a turn record; a tool result
   * whose outcome one of the row's records holds refers to it.
   */
  row(events: readonly Envelope[]): RowPlan {
    const records: StoredTurn[] = [];
    const refs = new Map<Envelope, Refs>();
    for (const env of events) {
      if (env.type !== 'llm.request') continue;
      const payload = env.payload as { messages?: unknown } | null;
      if (!payload || !Array.isArray(payload.messages)) continue;
      const messages: readonly unknown[] = payload.messages;
      const extras = this.extras?.get(env.id);
      const prev = this.updates.get(env.from) ?? this.known?.get(env.from);
      // A copy: the actor may push to its array after this request.
      this.updates.set(env.from, { seq: env.seq, messages: [...messages] });
      let keep = 0;
      if (prev && prev.seq < env.seq) {
        const max = Math.min(prev.messages.length, messages.length);
        while (keep < max && same(prev.messages[keep], messages[keep])) keep++;
      }
      if (keep === 0 && !extras) continue;
      const used = extras?.used?.length ? extras.used : undefined;
      records.push({ a: env.from, q: env.seq, k: keep, m: packAdded(messages.slice(keep), used), ...(used ? { u: used } : {}), ...(extras?.state ? { s: extras.state } : {}) });
      refs.set(env, { messages: ['m', records.length - 1] });
    }
    // Outcomes the records hold, by their JSON (each taken once).
    let outcomes: Map<string, Array<[number, number]>> | undefined;
    for (const env of events) {
      if (env.type !== 'tool.result' || !records.some((r) => r.u)) continue;
      const p = env.payload as { ok?: unknown; result?: unknown; error?: unknown } | null;
      const field = p?.ok === true ? 'result' : 'error';
      const value = p?.[field];
      if (value === undefined) continue;
      if (!outcomes) {
        outcomes = new Map();
        records.forEach((r, i) =>
          r.u?.forEach((u, j) => {
            const json = JSON.stringify(u.result);
            if (json !== undefined) outcomes!.set(json, [...(outcomes!.get(json) ?? []), [i, j]]);
          }),
        );
      }
      const at = outcomes.get(JSON.stringify(value))?.shift();
      if (at) refs.set(env, { [field]: ['u', at[0], at[1]] });
    }
    return {
      turns: records.length ? JSON.stringify(records) : undefined,
      pack: (json, env) => {
        const r = refs.get(env);
        if (!r) return json;
        // The payload without what the records hold: `0` in each such field, in its place.
        const held = Object.fromEntries(Object.keys(r).map((f) => [f, 0]));
        return { json: JSON.stringify({ ...(env.payload as object), ...held }), refs: r };
      },
    };
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
    const payload = env.payload as { messages?: unknown } | null;
    const stored = payload?.messages;
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
      if (d.keep > base.length) throw new AoError('AO_STORE_CORRUPT', `llm.request at seq ${env.seq} of run ${env.runId} keeps ${d.keep} messages of a request that has ${base.length}`);
      messages = [...base.slice(0, d.keep), ...d.add];
    }
    bases.set(`${env.runId}/${env.seq}`, messages);
    bases.set(`${env.runId}#${env.from}`, messages);
    return messages === stored ? env : { ...env, payload: { ...payload, messages } };
  });
  return { envelopes, missing };
}
