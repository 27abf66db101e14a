import { createHash } from 'node:crypto';
import { and, eq, inArray, isNotNull, lt, or, sql } from 'drizzle-orm';
import type { SQLWrapper } from 'drizzle-orm';
import { AoError } from '@ao/graphs';
import { isoNow } from '../clock/mod.js';
import type { Retention } from '@ao/graphs';
import type { CommitBatch, Store } from './port.js';
import { CONTENTS_INSERT, CONTENTS_INSERT_INTO, CONTENTS_ROW_TYPE, JOURNAL_INSERT, JOURNAL_ROW_TYPE, JOURNAL_ROWS } from './group-append.js';
import { ContentPacker, refsIn } from './content-refs.js';
import { journalRowsJson } from './journal-format.js';
import { DELTA, stateBaseOf, zipState } from './row-zip.js';
import { RowZipper } from './journal-zip.js';
import { checkpoints, contents, journal, runs, signals } from './schema.js';
import type { BucketTable } from '../llm/limits/mod.js';
import { APPEND_FREE_SQL, JOURNAL_COLUMNS, TERMINAL, groupable, outputAsStored, rowOf } from './store-rows.js';
import type { Row } from './store-rows.js';
import { StoreRuns } from './store-runs.js';
import { OriginalTurns } from './shared-turns.js';
import { outputsByRef } from './state-refs.js';

export type { Db } from './store-rows.js';

/** A checkpoint state as a commit stores it: against its run's keyframe when the commit knows it. */
const zipOf = (row: Row, runId: string, step: number, state: string): Buffer => (row.states ? row.states.zip(runId, step, state) : zipState(state));

/**
 * The `Store` port over drizzle, on Postgres or PGlite. Its parts, each a class this one extends:
 * the read path (`StoreReader`, journal-reader.ts), reads of logs and checkpoints (`StoreReads`,
 * store-reads.ts), runs and the queue (`StoreRuns`, store-runs.ts); here, the commit path and
 * retention.
 */
export class DrizzleStore extends StoreRuns implements Store, BucketTable {
  async commit(input: CommitBatch): Promise<void> {
    const { checkpoint: one, checkpoints: many, turns, original, ...rest } = input;
    // Long strings go to the run's contents, once; the rows hold references (see content-refs.ts).
    const pk = new ContentPacker(rest.runId, this.known.get(rest.runId), this.contentMinChars);
    // An agent's requests are stored as what they add to its previous one, in turn records the
    // tool results of the same commit refer to (see request-history.ts, turns.ts). A replay's
    // records, and its tool results, name its original's where they hold the same (see shared-turns.ts).
    const shared =
      original && rest.events.some((e) => e.type === 'llm.request' || e.type === 'tool.result')
        ? await this.originalTurns(original).catch(() => undefined)
        : undefined;
    const hp = this.histories.packer(rest.runId, turns, shared);
    // Rows are deflated against an earlier row of their run (see journal-zip.ts).
    const zip = new RowZipper(this.dicts);
    // Checkpoint states are deflated against their run's latest keyframe (see row-zip.ts).
    const states = this.stateBases.zipper();
    const row = rowOf(rest.events, pk, hp, zip, states);
    // Node outputs the run's `node.completed` envelopes hold (as far as this process knows) are referred to (see state-refs.ts).
    const cps = [...(one ? [one] : []), ...(many ?? [])].map((c) => ({ ...c, state: outputsByRef(c.state, (node) => hp.outputOf(node)) }));
    const batch = {
      ...rest,
      ...(cps.length ? { checkpoints: cps } : {}),
      ...(rest.patch?.output !== undefined ? { patch: { ...rest.patch, output: outputAsStored(rest.patch.output, rest.events) } } : {}),
    };
    const maxSeq = batch.events.reduce((m, e) => Math.max(m, e.seq), 0);
    try {
      await this.commitPacked(batch, maxSeq, pk, row);
    } catch (e) {
      // Its row may or may not be stored: the run's dictionary starts again (it is a range of rows).
      this.dicts.forget(batch.runId);
      throw e;
    }
    if (pk.fresh.size) this.known.add(batch.runId, pk.fresh.keys());
    if (typeof batch.patch?.output === 'string' && batch.patch.output !== rest.patch?.output) {
      if (this.outputs.size >= 256) this.outputs.clear();
      this.outputs.set(`${batch.runId}/${batch.patch.output}`, JSON.stringify(rest.patch!.output));
    }
    if ((batch.patch?.status && TERMINAL.includes(batch.patch.status)) || batch.patch?.releaseLease) {
      this.histories.forget(batch.runId);
      this.dicts.forget(batch.runId);
      this.stateBases.forget(batch.runId);
    } else {
      this.histories.landed(batch.runId, hp);
      zip.landed();
      states.landed();
    }
  }

  protected async commitPacked(batch: Omit<CommitBatch, 'checkpoint' | 'turns'>, maxSeq: number, pk: ContentPacker, row: Row): Promise<void> {
    // Signals consumed with the step (rare: a wait answered) take the transaction below.
    if (this.raw && !batch.patch?.consumeSignals?.length && (batch.events.length || batch.patch || batch.checkpoints)) {
      const owned = batch.owner !== undefined;
      const now = isoNow();
      let found: Array<Record<string, unknown>>;
      if (owned && groupable(batch)) {
        const cps = batch.checkpoints?.map((c) => ({ ...c, seq: c.seq ?? maxSeq }));
        return this.group!.append(batch.runId, batch.owner!, batch.events, {
          ...(batch.patch?.nodes ? { nodes: batch.patch.nodes } : {}),
          ...(batch.patch?.usage ? { usage: batch.patch.usage } : {}),
          ...(cps ? { checkpoints: cps } : {}),
          contents: pk,
          pack: row.pack,
          ...(row.turns ? { turns: row.turns } : {}),
          zip: row.zip,
          ...(row.states ? { states: row.states } : {}),
        });
      } else if (!batch.patch && !batch.checkpoints) {
        const rows = journalRowsJson(batch.events, row.pack, () => row.turns, row.zip);
        found = await this.raw('ao_append', APPEND_FREE_SQL, [batch.runId, now, maxSeq, rows, `[${pk.rowsJson()}]`]);
      } else {
        found = await this.commitOneStatement(batch, maxSeq, now, pk, row);
      }
      if (owned && Number(found[0]?.owned) === 0) {
        throw new AoError('AO_LEASE_LOST', `node ${batch.owner} no longer holds run ${batch.runId}: another node took it over`, {
          details: { runId: batch.runId },
        });
      }
      return;
    }
    const { releaseLease, consumeSignals, ...patch } = batch.patch ?? {};
    await this.db.transaction(async (tx) => {
      let run: { lastSeq: number } | undefined;
      // The run row first: it locks the run, and with `owner` it fences a node whose lease another
      // node has taken (nothing of this batch is written then).
      if (batch.patch || batch.checkpoints || maxSeq > 0 || batch.owner !== undefined) {
        [run] = await tx
          .update(runs)
          .set({
            ...patch,
            updatedAt: isoNow(),
            ...(maxSeq > 0 ? { lastSeq: sql`greatest(${runs.lastSeq}, ${maxSeq})` } : {}),
            ...(releaseLease ? { owner: null, leaseExpiresAt: null } : {}),
          })
          .where(batch.owner !== undefined ? and(eq(runs.id, batch.runId), eq(runs.owner, batch.owner)) : eq(runs.id, batch.runId))
          .returning({ lastSeq: runs.lastSeq });
        if (!run && batch.owner !== undefined) {
          throw new AoError('AO_LEASE_LOST', `node ${batch.owner} no longer holds run ${batch.runId}: another node took it over`, {
            details: { runId: batch.runId },
          });
        }
      }
      if (batch.events.length) {
        await tx.execute(
          sql`${sql.raw(JOURNAL_INSERT)} from json_to_recordset(${journalRowsJson(batch.events, row.pack, () => row.turns, row.zip)}::json) as ${sql.raw(JOURNAL_ROW_TYPE)} on conflict (id) do nothing`,
        );
      }
      if (consumeSignals?.length) {
        await tx
          .update(signals)
          .set({ consumedAt: isoNow() })
          .where(and(eq(signals.runId, batch.runId), inArray(signals.id, consumeSignals)));
      }
      for (const c of run ? (batch.checkpoints ?? []) : []) {
        const state = pk.pack(JSON.stringify(c.state));
        await tx.insert(checkpoints).values({
          runId: batch.runId,
          step: c.step,
          seq: c.seq ?? run!.lastSeq,
          node: c.node,
          graphVersion: c.graphVersion,
          zstate: sql`decode(${zipOf(row, batch.runId, c.step, state).toString('base64')}, 'base64')`,
          sizeBytes: Buffer.byteLength(state),
          createdAt: isoNow(),
        });
      }
      if (pk.fresh.size)
        await tx.execute(
          sql`${sql.raw(CONTENTS_INSERT_INTO)} json_to_recordset(${`[${pk.rowsJson()}]`}::json) as ${sql.raw(CONTENTS_ROW_TYPE)} on conflict do nothing`,
        );
    });
  }

  /**
   * A step's commit (run patch, events, checkpoint) as one statement: the run row's UPDATE (built
   * by drizzle, fenced by owner) feeds the events' and the checkpoint's INSERTs in one
   * data-modifying CTE, so the checkpoint's seq is the run's last seq after the update, as in the
   * transaction. The checkpoint state is serialised once (its size is that text's length).
   */
  protected async commitOneStatement(
    batch: Omit<CommitBatch, 'checkpoint' | 'turns'>,
    maxSeq: number,
    now: string,
    pk: ContentPacker,
    row: Row,
  ): Promise<Array<Record<string, unknown>>> {
    const { releaseLease, consumeSignals: _taken, ...patch } = batch.patch ?? {};
    const update = this.db
      .update(runs)
      .set({
        ...patch,
        updatedAt: now,
        ...(maxSeq > 0 ? { lastSeq: sql`greatest(${runs.lastSeq}, ${maxSeq})` } : {}),
        ...(releaseLease ? { owner: null, leaseExpiresAt: null } : {}),
      })
      .where(batch.owner !== undefined ? and(eq(runs.id, batch.runId), eq(runs.owner, batch.owner)) : eq(runs.id, batch.runId))
      .returning({ lastSeq: runs.lastSeq })
      .toSQL();
    const values: unknown[] = [...update.params];
    const param = (v: unknown) => `$${values.push(v)}`;
    const parts = [`r as (${update.sql})`];
    if (batch.events.length) {
      parts.push(`ins as (${JOURNAL_INSERT} from ${JOURNAL_ROWS(param(journalRowsJson(batch.events, row.pack, () => row.turns, row.zip)))}
        ${batch.owner !== undefined ? 'where exists (select 1 from r)' : ''}
        on conflict (id) do nothing returning 1)`);
    }
    for (const [i, c] of (batch.checkpoints ?? []).entries()) {
      const state = pk.pack(JSON.stringify(c.state));
      const seq = c.seq !== undefined ? `${param(c.seq)}::int` : 'r.last_seq';
      parts.push(`cp${i} as (insert into checkpoints (run_id, step, seq, node, graph_version, zstate, size_bytes, created_at)
        select ${param(batch.runId)}, ${param(c.step)}::int, ${seq}, ${param(c.node)}, ${param(c.graphVersion)}, decode(${param(zipOf(row, batch.runId, c.step, state).toString('base64'))}, 'base64'), ${param(Buffer.byteLength(state))}::int, ${param(now)}::timestamptz from r returning 1)`);
    }
    if (pk.fresh.size)
      parts.push(
        `ct as (${CONTENTS_INSERT(param(`[${pk.rowsJson()}]`))} ${batch.owner !== undefined ? 'where exists (select 1 from r)' : ''} on conflict do nothing returning 1)`,
      );
    const text = `with ${parts.join(', ')} select (select count(*) from r)::int as owned`;
    // Named by its text: a run has a handful of patch shapes, each prepared once per connection.
    return this.raw!(`ao_commit_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`, text, values);
  }

  /** The records of a run replays refer to, read once (a few recent originals remembered). */
  protected originalTurns(runId: string): Promise<OriginalTurns> {
    let known = this.originals.get(runId);
    if (!known) {
      if (this.originals.size >= 8) this.originals.delete(this.originals.keys().next().value!);
      known = this.turnsIn([{ runId, from: 0 }]).then((m) => new OriginalTurns(runId, m.get(runId) ?? []));
      // A failed read is tried again by the next commit.
      known.catch(() => this.originals.delete(runId));
      this.originals.set(runId, known);
    }
    return known;
  }
  private readonly originals = new Map<string, Promise<OriginalTurns>>();

  async sweep(graph: string, policy: Retention): Promise<{ runs: number; checkpoints: number }> {
    let deletedRuns = 0;
    let deletedCheckpoints = 0;
    if (policy.ttlSec !== undefined) {
      // A run a stored replay or fork refers to (its turn records, its log before the fork's step)
      // stays until none does: each pass deletes the runs nothing refers to, then the ones those did.
      for (;;) {
        const gone = await this.db
          .delete(runs)
          .where(
            and(
              eq(runs.graph, graph),
              inArray(runs.status, TERMINAL),
              lt(runs.finishedAt, sql`now() - ${policy.ttlSec} * interval '1 second'`),
              sql`not exists (select 1 from runs f where f.replay->>'of' = ${runs.id})`,
            ),
          )
          .returning({ id: runs.id });
        deletedRuns += gone.length;
        if (!gone.length) break;
      }
    }
    if (policy.keepCheckpoints !== undefined) {
      const finished = this.db
        .select({ id: runs.id })
        .from(runs)
        .where(and(eq(runs.graph, graph), inArray(runs.status, TERMINAL)));
      await this.keyframesKept(finished, policy.keepCheckpoints);
      const gone = await this.db
        .delete(checkpoints)
        .where(
          and(
            inArray(checkpoints.runId, finished),
            sql`${checkpoints.step} <= (select max(c2.step) from checkpoints c2 where c2.run_id = ${checkpoints.runId}) - ${policy.keepCheckpoints}`,
          ),
        )
        // The contents a deleted checkpoint referenced (a state that references none comes back without text).
        // (A deflated state is inflated here to be searched: Postgres cannot look into it.)
        .returning({
          runId: checkpoints.runId,
          step: checkpoints.step,
          state: sql<string | null>`case when strpos(${checkpoints.state}::text, chr(57344)) > 0 then ${checkpoints.state}::text end`,
          zstate: sql<string | null>`encode(${checkpoints.zstate}, 'base64')`,
        });
      deletedCheckpoints = gone.length;
      const candidates = new Map<string, Set<string>>();
      const searched = gone.filter((g) => g.zstate || g.state);
      const texts = await this.stateTexts(searched);
      searched.forEach((g, i) => {
        for (const h of refsIn(texts[i]!)) candidates.set(g.runId, (candidates.get(g.runId) ?? new Set()).add(h));
      });
      for (const [runId, hashes] of candidates) await this.collectContents(runId, hashes);
    }
    return { runs: deletedRuns, checkpoints: deletedCheckpoints };
  }

  /**
   * A kept checkpoint deflated against a keyframe that retention is about to delete is rewritten
   * first as a keyframe itself (deflated alone, see row-zip.ts), so a kept checkpoint always reads,
   * and retention keeps exactly the checkpoints it kept before keyframes.
   */
  protected async keyframesKept(finished: SQLWrapper, keep: number): Promise<void> {
    const last = sql`(select max(c2.step) from checkpoints c2 where c2.run_id = ${checkpoints.runId})`;
    const deltas = await this.db
      .select({
        runId: checkpoints.runId,
        step: checkpoints.step,
        state: sql<string | null>`null`,
        zstate: sql<string | null>`encode(${checkpoints.zstate}, 'base64')`,
        last: sql<number>`${last}`,
      })
      .from(checkpoints)
      .where(and(inArray(checkpoints.runId, finished), sql`get_byte(${checkpoints.zstate}, 0) = ${DELTA}`, sql`${checkpoints.step} > ${last} - ${keep}`));
    const orphaned = deltas.filter((d) => stateBaseOf(Buffer.from(d.zstate!, 'base64'))! <= Number(d.last) - keep);
    const texts = await this.stateTexts(orphaned);
    for (const [i, d] of orphaned.entries())
      await this.db
        .update(checkpoints)
        .set({ zstate: sql`decode(${zipState(texts[i]!).toString('base64')}, 'base64')` })
        .where(and(eq(checkpoints.runId, d.runId), eq(checkpoints.step, d.step)));
  }

  /**
   * Delete the contents among `hashes` of a finished run that nothing of it references any more:
   * no checkpoint kept, no journal row (a journal row is never deleted but with its run). Called
   * after checkpoints that referenced them were deleted; a kept checkpoint reads whole, as before.
   */
  protected async collectContents(runId: string, hashes: Set<string>): Promise<void> {
    const kept = await this.db
      .select({
        runId: checkpoints.runId,
        step: checkpoints.step,
        state: sql<string | null>`${checkpoints.state}::text`,
        zstate: sql<string | null>`encode(${checkpoints.zstate}, 'base64')`,
      })
      .from(checkpoints)
      .where(and(eq(checkpoints.runId, runId), or(isNotNull(checkpoints.zstate), sql`strpos(${checkpoints.state}::text, chr(57344)) > 0`)));
    for (const text of await this.stateTexts(kept)) for (const h of refsIn(text)) hashes.delete(h);
    if (!hashes.size) return;
    // The run's rows, as stored (inflated, their references not resolved).
    const rows = await this.inflate(await this.db.select(JOURNAL_COLUMNS).from(journal).where(eq(journal.runId, runId)));
    for (const r of rows) for (const text of [r.body, r.turns]) if (typeof text === 'string') for (const h of refsIn(text)) hashes.delete(h);
    if (hashes.size) await this.db.delete(contents).where(and(eq(contents.runId, runId), inArray(contents.hash, [...hashes])));
  }

  close(): Promise<void> {
    return this.onClose();
  }
}
