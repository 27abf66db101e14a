import { z } from 'zod';
import { AoError } from '@ao/graphs';
import type { Envelope } from '../envelope/mod.js';

/**
 * An agent's model requests carry its whole conversation: turn k's `llm.request` holds every
 * message of turns 1..k, so a log that keeps each request whole grows with the square of the
 * conversation (issue 22). The store keeps a request's `messages` as a reference to the same
 * actor's previous request and what is new: `{ base, keep, add }` = the first `keep` messages of
 * the request at seq `base`, then `add`. Reads rebuild the whole array, in seq order (a read that
 * starts after a base reads the run's earlier rows first). Only the stored form changes: the bus,
 * the API, replay and the request's hash see whole requests.
 *
 * The previous request of each actor is known from this process's own commits (the store keeps
 * a copy of its messages array while the run is active); after a restart the next request is
 * stored whole, and deltas resume from it.
 */
const DeltaSchema = z.object({ base: z.number().int().positive(), keep: z.number().int().nonnegative(), add: z.array(z.unknown()) });

interface Last {
  seq: number;
  messages: readonly unknown[];
}

const same = (a: unknown, b: unknown) => a === b || JSON.stringify(a) === JSON.stringify(b);

/** The last request of each actor of each recent run, as committed by this process. */
export class RequestHistories {
  private readonly runs = new Map<string, Map<string, Last>>();

  constructor(private readonly maxRuns = 500) {}

  /** What one commit of `runId` stores: its requests' messages as deltas, where they continue one before. */
  packer(runId: string): HistoryPacker {
    return new HistoryPacker(this.runs.get(runId));
  }

  /** The commit landed: its requests are the ones the next commits continue. */
  landed(runId: string, p: HistoryPacker): void {
    if (!p.updates.size) return;
    let run = this.runs.get(runId);
    if (!run) {
      if (this.runs.size >= this.maxRuns) this.runs.delete(this.runs.keys().next().value!);
      run = new Map();
      this.runs.set(runId, run);
    }
    for (const [actor, last] of p.updates) run.set(actor, last);
  }

  /** The run ended (or its host let it go): nothing more to continue. */
  forget(runId: string): void {
    this.runs.delete(runId);
  }
}

export class HistoryPacker {
  readonly updates = new Map<string, Last>();

  constructor(private readonly known: ReadonlyMap<string, Last> | undefined) {}

  /** The payload JSON to store for `env` (`json` is its whole payload's JSON). */
  pack(env: Envelope, json: string): string {
    if (env.type !== 'llm.request') return json;
    const payload = env.payload as { messages?: unknown } | null;
    if (!payload || !Array.isArray(payload.messages)) return json;
    const messages: readonly unknown[] = payload.messages;
    const prev = this.updates.get(env.from) ?? this.known?.get(env.from);
    // A copy: the actor may push to its array after this request.
    this.updates.set(env.from, { seq: env.seq, messages: [...messages] });
    if (!prev || prev.seq >= env.seq) return json;
    let keep = 0;
    const max = Math.min(prev.messages.length, messages.length);
    while (keep < max && same(prev.messages[keep], messages[keep])) keep++;
    if (keep === 0) return json;
    return JSON.stringify({ ...payload, messages: { base: prev.seq, keep, add: messages.slice(keep) } });
  }
}

/**
 * Rebuild the requests of `envs` (in seq order, of any runs) whose messages are stored as deltas,
 * with the whole messages of earlier requests in `bases` (`run/seq`; filled as it goes). Returns
 * the rebuilt envelopes, or the runs whose bases are not among them (read their earlier rows first).
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
      const d = DeltaSchema.safeParse(stored);
      if (!d.success) return env;
      const base = bases.get(`${env.runId}/${d.data.base}`);
      if (!base) {
        missing.add(env.runId);
        return env;
      }
      if (d.data.keep > base.length) throw new AoError('AO_STORE_CORRUPT', `llm.request at seq ${env.seq} of run ${env.runId} keeps ${d.data.keep} messages of a request that has ${base.length}`);
      messages = [...base.slice(0, d.data.keep), ...d.data.add];
    }
    bases.set(`${env.runId}/${env.seq}`, messages);
    return messages === stored ? env : { ...env, payload: { ...payload, messages } };
  });
  return { envelopes, missing };
}
