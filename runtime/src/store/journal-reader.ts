import { and, arrayOverlaps, asc, eq, gt, inArray, lt, lte, sql } from 'drizzle-orm';
import { AoError } from '@ao/graphs';
import { payloadField } from '../envelope/mod.js';
import type { Envelope } from '../envelope/mod.js';
import { resolveRefs } from './content-refs.js';
import { rebuildRequests } from './request-history.js';
import { seqBounds } from './seq-bounds.js';
import { pendingRefs, setAt, turnsOf, unpackRows } from './journal-format.js';
import type { JournalRow, Refs } from './journal-format.js';
import type { StoredTurn } from './turns.js';
import { namedRecords, putShared } from './shared-turns.js';
import { putRefs, stateRefsOf } from './state-refs.js';
import type { CheckpointRecord, RunRecord } from './records.js';
import { journal } from './schema.js';
import { JOURNAL_COLUMNS, OUTPUT_REF, toCheckpoint } from './store-rows.js';
import type { StoredCheckpoint } from './store-rows.js';
import { StoreBase } from './store-base.js';

/**
 * The store's read path (a part of `DrizzleStore`, drizzle-store.ts, which extends it through
 * `StoreRuns` and `StoreReads`): how stored rows become envelopes again: resolving content
 * references, rebuilding requests from their histories, sharing a replay's records with its
 * original's, and putting back outputs and checkpoints stored by reference. The connection, the
 * caches and the inflating of rows are `StoreBase`'s (store-base.ts).
 */
export abstract class StoreReader extends StoreBase {
  /** Runs with their outputs put back where their rows refer to their `run.finished` (one read for all). */
  protected async withOutputs(records: RunRecord[]): Promise<RunRecord[]> {
    const known = (r: RunRecord) => (typeof r.output === 'string' ? this.outputs.get(`${r.id}/${r.output}`) : undefined);
    records = records.map((r) => {
      const json = known(r);
      return json === undefined ? r : { ...r, output: JSON.parse(json) as unknown };
    });
    const referring = records.filter((r) => typeof r.output === 'string' && r.output.startsWith(OUTPUT_REF));
    if (!referring.length) return records;
    const found = new Map(
      (await this.eventsById(referring.map((r) => ({ runId: r.id, id: (r.output as string).slice(OUTPUT_REF.length) })))).map((e) => [`${e.runId}/${e.id}`, e]),
    );
    return records.map((r) => {
      if (!referring.includes(r)) return r;
      const id = (r.output as string).slice(OUTPUT_REF.length);
      const env = found.get(`${r.id}/${id}`);
      if (!env)
        throw new AoError('AO_STORE_CORRUPT', `run ${r.id}: its output refers to envelope ${id}, which its log does not hold`, { details: { runId: r.id } });
      return { ...r, output: payloadField(env.payload, 'output') ?? null };
    });
  }

  async eventsById(refs: ReadonlyArray<{ runId: string; id: string; upTo?: number }>): Promise<Envelope[]> {
    if (!refs.length) return [];
    const ids = refs.map((r) => r.id);
    const bounds = seqBounds(refs);
    const rows = await (
      bounds
        ? this.db
            .select(JOURNAL_COLUMNS)
            .from(journal)
            .innerJoin(
              sql`unnest(${sql.param([...bounds.keys()])}::text[], ${sql.param([...bounds.values()])}::int[]) as f(run_id, up_to)`,
              sql`${journal.runId} = f.run_id and ${journal.seq} <= f.up_to`,
            )
            .where(arrayOverlaps(journal.ids, ids))
        : this.db
            .select(JOURNAL_COLUMNS)
            .from(journal)
            .where(and(inArray(journal.runId, [...new Set(refs.map((r) => r.runId))]), arrayOverlaps(journal.ids, ids)))
    ).orderBy(asc(journal.runId), asc(journal.seq));
    const wanted = new Set(refs.map((r) => `${r.runId}/${r.id}`));
    return this.expand(rows, undefined, (e) => wanted.has(`${e.runId}/${e.id}`));
  }

  async turnsSince(ranges: ReadonlyArray<{ runId: string; from: number }>): Promise<Map<string, StoredTurn[]>> {
    return this.turnsIn(ranges);
  }

  /** The turn records of each run's requests with `from` <= seq (<= `to`), whole (a replay's shared ones put back). */
  protected async turnsIn(ranges: ReadonlyArray<{ runId: string; from: number; to?: number }>): Promise<Map<string, StoredTurn[]>> {
    const out = new Map<string, StoredTurn[]>(ranges.map((r) => [r.runId, []]));
    if (!ranges.length) return out;
    const from = new Map(ranges.map((r) => [r.runId, r.from]));
    const to = new Map(ranges.map((r) => [r.runId, r.to ?? 2 ** 31 - 1]));
    // Only the records: a row's body is not read (nor detoasted).
    const stored = await this.db
      .select({
        runId: journal.runId,
        seq: journal.seq,
        turns: sql<string | null>`${journal.turns}::text`,
        zt: sql<string | null>`encode(${journal.packedTurns}, 'base64')`,
      })
      .from(journal)
      .innerJoin(
        sql`unnest(${sql.param(ranges.map((r) => r.runId))}::text[], ${sql.param(ranges.map((r) => r.from))}::int[], ${sql.param(ranges.map((r) => to.get(r.runId)!))}::int[]) as f(run_id, from_seq, to_seq)`,
        sql`${journal.runId} = f.run_id and ${journal.lastSeq} >= f.from_seq and ${journal.seq} <= f.to_seq and (${journal.turns} is not null or ${journal.packedTurns} is not null)`,
      )
      .orderBy(asc(journal.runId), asc(journal.seq));
    const rows = (await this.inflate(stored.map((r) => ({ ...r, body: null, z: null })))).map((r) => ({
      runId: r.runId,
      seq: r.seq,
      turns: r.turns as string,
    }));
    const content = await this.contentsOf(rows.map((r) => ({ runId: r.runId, text: r.turns })));
    const resolved = rows.map((r) => ({
      ...r,
      turns: content ? resolveRefs(r.turns, (h) => content.get(`${r.runId}/${h}`), `turn records at seq ${r.seq} of run ${r.runId}`) : r.turns,
    }));
    for (const r of await this.withShared(resolved))
      for (const t of turnsOf({ turns: r.turns })) if (t.q >= from.get(r.runId)! && t.q <= to.get(r.runId)!) out.get(r.runId)!.push(t);
    return out;
  }

  /**
   * Rows whose turn records name their original's (a replay's, format 5) with those put back
   * whole: one read of the records named, of each original (itself read whole the same way).
   */
  protected async withShared<R extends { runId: string; seq: number; turns?: unknown }>(rows: R[]): Promise<R[]> {
    const named = namedRecords(rows.flatMap((r) => (typeof r.turns === 'string' ? [r.turns] : [])));
    if (!named.size) return rows;
    const originals = await this.turnsIn([...named].map(([runId, r]) => ({ runId, from: r.from, to: r.to })));
    const found = new Map<string, StoredTurn>();
    for (const [runId, records] of originals) for (const t of records) found.set(`${runId}/${t.q}`, t);
    return rows.map((r) => (typeof r.turns === 'string' ? { ...r, turns: putShared(r.turns, found, `journal row at seq ${r.seq} of run ${r.runId}`) } : r));
  }

  async listEvents(runId: string, q: { after?: number; upTo?: number; limit: number }): Promise<Envelope[]> {
    // A row holds at least one envelope of the range it overlaps (seqs are gapless), so `limit`
    // rows hold `limit` envelopes; a row that does not (a commit with a gap) is read past.
    const out: Envelope[] = [];
    const bases = new Map<string, readonly unknown[]>();
    let after = q.after ?? 0;
    for (;;) {
      const rows = await this.db
        .select(JOURNAL_COLUMNS)
        .from(journal)
        .where(and(eq(journal.runId, runId), gt(journal.lastSeq, after), q.upTo !== undefined ? lte(journal.seq, q.upTo) : undefined))
        .orderBy(asc(journal.seq))
        .limit(q.limit);
      out.push(...(await this.expand(rows, bases, (e) => e.seq > after && e.seq <= (q.upTo ?? Infinity))));
      if (out.length >= q.limit || rows.length < q.limit) return out.slice(0, q.limit);
      after = rows.at(-1)!.lastSeq;
    }
  }

  /** Rows with their content references resolved (one read of the contents they name). */
  protected async resolve(stored: JournalRow[]): Promise<JournalRow[]> {
    const rows = await this.inflate(stored);
    const content = await this.contentsOf(
      rows.flatMap((r) => [{ runId: r.runId, text: r.body as string }, ...(typeof r.turns === 'string' ? [{ runId: r.runId, text: r.turns }] : [])]),
    );
    if (!content) return this.withShared(rows);
    const where = (r: JournalRow) => `journal row at seq ${r.seq} of run ${r.runId}`;
    return this.withShared(
      rows.map((r) => ({
        ...r,
        body: resolveRefs(r.body as string, (h) => content.get(`${r.runId}/${h}`), where(r)),
        ...(typeof r.turns === 'string' ? { turns: resolveRefs(r.turns, (h) => content.get(`${r.runId}/${h}`), where(r)) } : {}),
      })),
    );
  }

  /**
   * The envelopes of rows (of any runs, each run's in seq order): contents resolved and requests
   * rebuilt from their deltas; a run whose rows continue requests made before them is read from
   * its start first. `bases` carries requests already rebuilt (a read in pages passes it on).
   */
  protected async expand(rows: JournalRow[], bases = new Map<string, readonly unknown[]>(), keep?: (e: Envelope) => boolean): Promise<Envelope[]> {
    // Only the envelopes asked for get the parts other rows hold put back: a row read for one
    // envelope holds others whose references lead further back (a node's context to an earlier
    // node's output, whose row holds an earlier context...), and following them all would read
    // the run's log row by row.
    const envs = await this.rebuild(rows, bases);
    return this.settle(keep ? envs.filter(keep) : envs);
  }

  /**
   * Envelopes with the parts other rows hold put back (see `Packed` in journal-format.ts): a
   * node's tool calls from its actor's turn records, a value of another envelope of the run (the
   * run's output from its nodes' `node.completed`), read once for all of them.
   */
  protected async settle(envs: Envelope[]): Promise<Envelope[]> {
    const waiting = envs.filter((e) => pendingRefs(e));
    if (!waiting.length) return envs;
    const byId = new Map(envs.map((e) => [`${e.runId}/${e.id}`, e]));
    const turnsOf = new Set<string>();
    const wanted: Array<{ runId: string; id: string }> = [];
    for (const e of waiting) {
      for (const [, ref] of pendingRefs(e)!) {
        if (ref[0] === 't') turnsOf.add(e.runId);
        else if (ref[0] === 'e' && !byId.has(`${e.runId}/${ref[1]}`)) wanted.push({ runId: e.runId, id: ref[1] });
      }
    }
    const records = turnsOf.size ? await this.turnsSince([...turnsOf].map((runId) => ({ runId, from: 0 }))) : new Map<string, StoredTurn[]>();
    const originals = await this.originalRecords(waiting);
    const corrupt = (e: Envelope, why: string) => new AoError('AO_STORE_CORRUPT', `${e.type} at seq ${e.seq} of run ${e.runId} ${why}`);
    const put = (e: Envelope, refs: Refs | undefined, kind: 't' | 'e'): Envelope => {
      let payload = e.payload;
      for (const [path, ref] of refs ?? []) {
        if (ref[0] === 'o' && kind === 't') {
          const u = originals.get(`${ref[1]}/${ref[2]}`)?.u?.[ref[3]];
          if (!u) throw corrupt(e, `refers to tool call ${ref[3]} of turn record ${ref[2]} of run ${ref[1]}, which the store does not hold`);
          payload = setAt(payload, path, u.result);
          continue;
        }
        if (ref[0] !== kind) continue;
        if (ref[0] === 't') {
          const used = (records.get(e.runId) ?? []).filter((r) => r.a === ref[1]).flatMap((r) => r.u ?? []);
          if (used.length < ref[2]) throw corrupt(e, `lists ${ref[2]} tool calls of ${ref[1]}, whose turn records hold ${used.length}`);
          payload = setAt(payload, path, used.slice(0, ref[2]));
        } else if (ref[0] === 'e') {
          const target = byId.get(`${e.runId}/${ref[1]}`);
          if (!target) throw corrupt(e, `refers to envelope ${ref[1]}, which the run's log does not hold`);
          payload = setAt(
            payload,
            path,
            ref.slice(2).reduce<unknown>((v, k) => (v as Record<string, unknown> | null)?.[k], target.payload),
          );
        }
      }
      return payload === e.payload ? e : { ...e, payload };
    };
    // Tool calls first: a value another envelope refers to may be a node's output that lists them.
    const listed = envs.map((e) => put(e, pendingRefs(e), 't'));
    listed.forEach((e) => byId.set(`${e.runId}/${e.id}`, e));
    for (const e of wanted.length ? await this.eventsById(wanted) : []) byId.set(`${e.runId}/${e.id}`, e);
    return listed.map((e, i) => put(e, pendingRefs(envs[i]!), 'e'));
  }

  /** The originals' turn records that envelopes' `o` refs name (`run/seq`), one read of each original's. */
  protected async originalRecords(envs: readonly Envelope[]): Promise<Map<string, StoredTurn>> {
    const ranges = new Map<string, { from: number; to: number }>();
    for (const e of envs)
      for (const [, ref] of pendingRefs(e) ?? []) {
        if (ref[0] !== 'o') continue;
        const r = ranges.get(ref[1]);
        ranges.set(ref[1], r ? { from: Math.min(r.from, ref[2]), to: Math.max(r.to, ref[2]) } : { from: ref[2], to: ref[2] });
      }
    const found = new Map<string, StoredTurn>();
    if (!ranges.size) return found;
    for (const [runId, records] of await this.turnsIn([...ranges].map(([runId, r]) => ({ runId, ...r }))))
      for (const t of records) found.set(`${runId}/${t.q}`, t);
    return found;
  }

  /** Rows' envelopes with their requests rebuilt (see `expand`). */
  protected async rebuild(rows: JournalRow[], bases: Map<string, readonly unknown[]>): Promise<Envelope[]> {
    const envs = unpackRows(await this.resolve(rows));
    // Rebuilt again from here if earlier rows must be read: what this pass adds is after them.
    const before = new Map(bases);
    const first = rebuildRequests(envs, bases);
    if (!first.missing.size) return first.envelopes;
    for (const runId of first.missing) {
      const from = Math.min(...rows.filter((r) => r.runId === runId).map((r) => r.seq));
      const earlier = await this.db
        .select(JOURNAL_COLUMNS)
        .from(journal)
        .where(and(eq(journal.runId, runId), lt(journal.seq, from)))
        .orderBy(asc(journal.seq));
      rebuildRequests(unpackRows(await this.resolve(earlier)), before);
    }
    const again = rebuildRequests(envs, before);
    if (again.missing.size) throw new AoError('AO_STORE_CORRUPT', `run ${[...again.missing][0]} has a request that continues one its log does not hold`);
    bases.clear();
    for (const [k, v] of before) bases.set(k, v);
    return again.envelopes;
  }

  protected async checkpointsOf(rows: StoredCheckpoint[]): Promise<CheckpointRecord[]> {
    const texts = await this.stateTexts(rows);
    const content = await this.contentsOf(rows.map((r, i) => ({ runId: r.runId, text: texts[i]! })));
    const states = rows.map(
      (r, i) =>
        JSON.parse(content ? resolveRefs(texts[i]!, (h) => content.get(`${r.runId}/${h}`), `checkpoint ${r.step} of run ${r.runId}`) : texts[i]!) as unknown,
    );
    // Parts held by the log (node outputs): one read of the envelopes they name, for all of them.
    const wanted = rows.flatMap((r, i) => stateRefsOf(states[i]).map((ref) => ({ runId: r.runId, id: ref.id })));
    if (wanted.length) {
      const byId = new Map((await this.eventsById(wanted)).map((e) => [`${e.runId}/${e.id}`, e]));
      rows.forEach((r, i) => putRefs(states[i], (id) => byId.get(`${r.runId}/${id}`), `checkpoint ${r.step} of run ${r.runId}`));
    }
    return rows.map(({ zstate: _z, ...r }, i) => toCheckpoint({ ...r, state: states[i] }));
  }
}
