import { AoError } from '@ao/graphs';
import type { StoredTurn } from './turns.js';

/**
 * A replay's or fork's turn records, shared with its original's (issue 22). A replay runs its
 * agents again from their start messages, so it used to store their conversations again: every
 * turn's added messages and tool calls (the pages a tool read) a second time, in its own records.
 * Now a record of the replay whose added messages and tool calls are exactly those of one of its
 * original's records (same actor, same number of messages kept) names that record instead:
 * `o: [original run id, the record's seq]`, no `m`, no `u` (its actor, seq, kept count and resume
 * point stay its own). Reads put the original's messages and calls back, so the API, the CLI,
 * replay and the request's hash see whole requests, as before. A row holding such a record is
 * format 5 (journal-format.ts), which a reader of formats 2-4 refuses.
 *
 * The original's records are kept as long as a run refers to them: retention does not delete a
 * run while a replay of it is stored (drizzle-store.ts, `sweep`).
 */
export type SharedTurn = Omit<StoredTurn, 'm' | 'u'> & { o: [string, number]; m?: undefined; u?: undefined };

/** A stored record that names its original's record. */
export const isShared = (t: unknown): t is SharedTurn =>
  typeof t === 'object' && t !== null && !('m' in t) && Array.isArray((t as SharedTurn).o) && typeof (t as SharedTurn).o[0] === 'string';

/** Whether a row's turn records (JSON text) may name an original's: a quick test, then a parse. */
export function namesOriginal(turns: string | undefined | null): boolean {
  if (!turns?.includes('"o":[')) return false;
  const parsed = JSON.parse(turns) as unknown;
  return Array.isArray(parsed) && parsed.some(isShared);
}

/** An original run's records (resolved: whole), by actor and messages kept, which a replay's records may name. */
export class OriginalTurns {
  private readonly byActor = new Map<string, Map<number, StoredTurn[]>>();
  /** Where each tool outcome (its JSON) is held: the record's seq and the call's index in it. */
  private readonly outcomes = new Map<string, [number, number]>();

  constructor(
    readonly runId: string,
    records: readonly StoredTurn[],
  ) {
    for (const r of records) {
      let byKeep = this.byActor.get(r.a);
      if (!byKeep) this.byActor.set(r.a, (byKeep = new Map()));
      byKeep.set(r.k, [...(byKeep.get(r.k) ?? []), r]);
      r.u?.forEach((u, j) => {
        const json = JSON.stringify(u.result);
        if (json !== undefined && !this.outcomes.has(json)) this.outcomes.set(json, [r.q, j]);
      });
    }
  }

  /** The original's record and tool call that hold an outcome of this JSON (a tool result of the replay refers to it). */
  outcome(json: string): [number, number] | undefined {
    return this.outcomes.get(json);
  }

  /** `r` as stored: a reference to the original's record that adds the same, or `r` itself. */
  share(r: StoredTurn): StoredTurn | SharedTurn {
    const candidates = this.byActor.get(r.a)?.get(r.k);
    if (!candidates) return r;
    const m = JSON.stringify(r.m);
    const u = JSON.stringify(r.u ?? null);
    const same = candidates.find((o) => JSON.stringify(o.m) === m && JSON.stringify(o.u ?? null) === u);
    if (!same) return r;
    const { m: _m, u: _u, ...own } = r;
    return { ...own, o: [this.runId, same.q] };
  }
}

/** The originals' seqs a set of rows' records name, by original run (for one read of each). */
export function namedRecords(texts: ReadonlyArray<string>): Map<string, { from: number; to: number }> {
  const out = new Map<string, { from: number; to: number }>();
  for (const text of texts) {
    if (!text.includes('"o":[')) continue;
    for (const t of JSON.parse(text) as unknown[]) {
      if (!isShared(t)) continue;
      const [run, q] = t.o;
      const r = out.get(run);
      out.set(run, r ? { from: Math.min(r.from, q), to: Math.max(r.to, q) } : { from: q, to: q });
    }
  }
  return out;
}

/** A row's records (JSON text) with each shared one made whole from `found` (`run/seq` -> the original's record). */
export function putShared(text: string, found: ReadonlyMap<string, StoredTurn>, where: string): string {
  if (!text.includes('"o":[')) return text;
  const records = JSON.parse(text) as unknown[];
  if (!records.some(isShared)) return text;
  return JSON.stringify(
    records.map((t) => {
      if (!isShared(t)) return t;
      const { o, ...own } = t;
      const original = found.get(`${o[0]}/${o[1]}`);
      if (!original || original.a !== t.a)
        throw new AoError('AO_STORE_CORRUPT', `${where} names turn record ${o[1]} of run ${o[0]}, which the store does not hold`, {
          details: { runId: o[0], seq: o[1] },
        });
      return { ...own, m: original.m, ...(original.u ? { u: original.u } : {}) };
    }),
  );
}
