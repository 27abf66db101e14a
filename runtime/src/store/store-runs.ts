import { and, asc, count, desc, eq, gte, inArray, isNull, lt, lte, notInArray, or, sql } from 'drizzle-orm';
import { AoError } from '@ao/graphs';
import { isoNow } from '../clock/mod.js';
import type { Envelope } from '../envelope/mod.js';
import type { ImportedRun, ListRunsQuery } from './port.js';
import { CONTENTS_INSERT_INTO, CONTENTS_ROW_TYPE, JOURNAL_INSERT, JOURNAL_ROW_TYPE } from './group-append.js';
import { ContentPacker } from './content-refs.js';
import { RequestHistories } from './request-history.js';
import { journalRowsJson } from './journal-format.js';
import { zipState } from './row-zip.js';
import { RowDictionaries, RowZipper } from './journal-zip.js';
import type { ApiKeyRecord, NewRun, RunRecord, RunStatus, SignalRecord } from './records.js';
import { apiKeys, checkpoints, journal, runs, signals } from './schema.js';
import {
  ACTIVE,
  CREATE_RUNS_SQL,
  NEW_USAGE,
  decodeCursor,
  encodeCursor,
  leaseUntil,
  pickImported,
  rowOf,
  runFromJson,
  toKey,
  toRecord,
  toSignal,
} from './store-rows.js';
import { StoreReads } from './store-reads.js';

/**
 * The runs table and the queue (a part of `DrizzleStore`: drizzle-store.ts): creating and
 * importing runs, idempotency keys, API keys, listing, claims and leases, signals and wakes,
 * cancellation.
 */
export abstract class StoreRuns extends StoreReads {
  async createRun({ leaseMs, tenant, ...run }: NewRun): Promise<RunRecord> {
    const now = isoNow();
    // A replay belongs to the tenant of its original, whoever asks for it.
    const owner = tenant ?? (run.replay ? (await this.getRun(run.replay.of))?.tenant : undefined) ?? 'default';
    const [row] = await this.db
      .insert(runs)
      .values({
        ...run,
        tenant: owner,
        leaseExpiresAt: leaseUntil(leaseMs),
        status: 'pending',
        usage: { inputTokens: 0, outputTokens: 0, totalTokens: 0, llmCalls: 0, toolCalls: 0, perTool: {} },
        createdAt: now,
        updatedAt: now,
      })
      // Only the (tenant, idempotency key) index can conflict (ids are fresh uuids): a repeat of a key.
      .onConflictDoNothing()
      .returning();
    if (!row) {
      throw new AoError('AO_IDEMPOTENCY_KEY_REUSED', `tenant ${owner} already has a run with idempotency key ${JSON.stringify(run.idempotencyKey)}`, {
        field: 'headers.idempotency-key',
      });
    }
    return toRecord(row);
  }

  async importRun({ run, events, checkpoints: cps }: ImportedRun): Promise<RunRecord> {
    const sorted = [...events].sort((a, b) => a.seq - b.seq);
    // One journal row per step, as the commits that wrote the run cut it (at its checkpoints' seqs).
    const cuts = new Set(cps.map((c) => c.seq));
    const chunks: Envelope[][] = [[]];
    for (const e of sorted) {
      chunks.at(-1)!.push(e);
      if (cuts.has(e.seq)) chunks.push([]);
    }
    const pk = new ContentPacker(run.id, undefined, this.contentMinChars);
    const hp = new RequestHistories().packer(run.id);
    const dicts = new RowDictionaries(1);
    const rows = chunks
      .filter((c) => c.length)
      .map((c) => {
        const row = rowOf(c, pk, hp, new RowZipper(dicts));
        const json = journalRowsJson(c, row.pack, () => row.turns, row.zip);
        row.zip.landed();
        return json;
      });
    const states = cps.map((c) => ({ ...c, text: pk.pack(JSON.stringify(c.state)) }));
    const exists = () =>
      new AoError('AO_RUN_EXISTS', `run ${run.id} is already stored (or its log is, under another id): import it under a new id`, {
        field: 'run.id',
        details: { runId: run.id },
      });
    const now = isoNow();
    const row = await this.db.transaction(async (tx) => {
      const [inserted] = await tx
        .insert(runs)
        .values({
          ...pickImported(run),
          owner: null,
          leaseExpiresAt: null,
          cancelRequested: false,
          lastSeq: sorted.at(-1)?.seq ?? 0,
          waits: [],
          wakeAt: null,
          updatedAt: now,
        })
        .onConflictDoNothing()
        .returning();
      if (!inserted) throw exists();
      // Envelope ids are unique across runs: a log imported before under another run id is refused, not merged.
      const firstIds = rows.length ? chunks.filter((c) => c.length).map((c) => c[0]!.id) : [];
      if (firstIds.length && (await tx.select({ id: journal.id }).from(journal).where(inArray(journal.id, firstIds)).limit(1)).length) throw exists();
      for (const r of rows) await tx.execute(sql`${sql.raw(JOURNAL_INSERT)} from json_to_recordset(${r}::json) as ${sql.raw(JOURNAL_ROW_TYPE)}`);
      for (const c of states) {
        await tx.insert(checkpoints).values({
          runId: run.id,
          step: c.step,
          seq: c.seq,
          node: c.node,
          graphVersion: c.graphVersion,
          zstate: sql`decode(${zipState(c.text).toString('base64')}, 'base64')`,
          sizeBytes: Buffer.byteLength(c.text),
          createdAt: c.createdAt,
        });
      }
      if (pk.fresh.size)
        await tx.execute(
          sql`${sql.raw(CONTENTS_INSERT_INTO)} json_to_recordset(${`[${pk.rowsJson()}]`}::json) as ${sql.raw(CONTENTS_ROW_TYPE)} on conflict do nothing`,
        );
      return inserted;
    });
    return toRecord(row);
  }

  /**
   * Insert several runs in one statement (one commit): the intake's batch of concurrent submits
   * (see RunIntake). Each entry is the stored run, or `undefined` when its tenant already has a
   * run with its idempotency key (also when two entries of the batch share one: the first wins).
   * One bad row fails the whole statement: the caller retries the entries one by one.
   */
  async createRuns(batch: readonly NewRun[]): Promise<Array<RunRecord | undefined>> {
    if (!batch.length) return [];
    const now = isoNow();
    const rows = await Promise.all(
      batch.map(async ({ leaseMs, tenant, ...run }) => ({
        id: run.id,
        graph: run.graph,
        graph_version: run.graphVersion,
        input: run.input,
        budget: run.budget,
        nodes: run.nodes,
        trace_id: run.traceId,
        owner: run.owner,
        lease_ms: leaseMs,
        replay: run.replay ?? null,
        tenant: tenant ?? (run.replay ? (await this.getRun(run.replay.of))?.tenant : undefined) ?? 'default',
        idempotency_key: run.idempotencyKey ?? null,
        request_hash: run.requestHash ?? null,
      })),
    );
    // The batch as ONE parameter (a JSON array read as rows), not a VALUES list of ~20 bound
    // parameters a run that the query builder assembles and the server parses one by one.
    const stored = this.raw
      ? (await this.raw('ao_create_runs', CREATE_RUNS_SQL, [JSON.stringify(rows), NEW_USAGE, now])).map((r) => runFromJson(r.row as Record<string, unknown>))
      : await this.db
          .insert(runs)
          .values(
            rows.map((r) => ({
              id: r.id,
              graph: r.graph,
              graphVersion: r.graph_version,
              input: r.input,
              budget: r.budget,
              nodes: r.nodes,
              traceId: r.trace_id,
              owner: r.owner,
              leaseExpiresAt: leaseUntil(r.lease_ms),
              replay: r.replay,
              tenant: r.tenant,
              idempotencyKey: r.idempotency_key,
              requestHash: r.request_hash,
              status: 'pending',
              usage: JSON.parse(NEW_USAGE) as RunRecord['usage'],
              createdAt: now,
              updatedAt: now,
            })),
          )
          .onConflictDoNothing()
          .returning();
    const byId = new Map(stored.map((r) => [r.id, r]));
    return batch.map((r) => {
      const row = byId.get(r.id);
      // New runs: no output yet.
      return row ? toRecord(row) : undefined;
    });
  }

  async findRunByIdempotencyKey(tenant: string, key: string): Promise<{ run: RunRecord; requestHash: string | null } | undefined> {
    const [row] = await this.db
      .select()
      .from(runs)
      .where(and(eq(runs.tenant, tenant), eq(runs.idempotencyKey, key)))
      .limit(1);
    return row ? { run: (await this.withOutputs([toRecord(row)]))[0]!, requestHash: row.requestHash } : undefined;
  }

  async countRuns(tenant: string, statuses: readonly RunStatus[]): Promise<number> {
    if (!statuses.length) return 0;
    const [row] = await this.db
      .select({ n: count() })
      .from(runs)
      .where(and(eq(runs.tenant, tenant), inArray(runs.status, [...statuses])));
    return row?.n ?? 0;
  }

  async createApiKey(key: Omit<ApiKeyRecord, 'createdAt' | 'revokedAt'>): Promise<ApiKeyRecord> {
    const [row] = await this.db
      .insert(apiKeys)
      .values({ ...key, createdAt: isoNow() })
      .returning();
    return toKey(row!);
  }

  async getApiKey(id: string): Promise<ApiKeyRecord | undefined> {
    const [row] = await this.db.select().from(apiKeys).where(eq(apiKeys.id, id)).limit(1);
    return row ? toKey(row) : undefined;
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    const rows = await this.db.select().from(apiKeys).orderBy(asc(apiKeys.createdAt), asc(apiKeys.id));
    return rows.map(toKey);
  }

  async revokeApiKey(id: string): Promise<boolean> {
    const rows = await this.db
      .update(apiKeys)
      .set({ revokedAt: isoNow() })
      .where(and(eq(apiKeys.id, id), isNull(apiKeys.revokedAt)))
      .returning({ id: apiKeys.id });
    return rows.length > 0;
  }

  async hasApiKeys(): Promise<boolean> {
    const [row] = await this.db.select({ id: apiKeys.id }).from(apiKeys).where(isNull(apiKeys.revokedAt)).limit(1);
    return row !== undefined;
  }

  async getRun(id: string): Promise<RunRecord | undefined> {
    const [row] = await this.db.select().from(runs).where(eq(runs.id, id)).limit(1);
    return row ? (await this.withOutputs([toRecord(row)]))[0] : undefined;
  }

  async listRuns(q: ListRunsQuery): Promise<{ runs: RunRecord[]; next: string | null }> {
    const conds = [];
    if (q.status) conds.push(eq(runs.status, q.status));
    if (q.graph) conds.push(eq(runs.graph, q.graph));
    if (q.tenant !== undefined) conds.push(eq(runs.tenant, q.tenant));
    if (q.cursor) conds.push(lt(runs.n, decodeCursor(q.cursor)));
    // LIKE 'prefix%' with the prefix's own wildcards escaped: the text_pattern_ops index makes it a range scan.
    if (q.idPrefix !== undefined) conds.push(sql`${runs.id} LIKE ${`${q.idPrefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`}`);
    if (q.since !== undefined) conds.push(gte(runs.createdAt, q.since));
    if (q.until !== undefined) conds.push(lt(runs.createdAt, q.until));
    const rows = await this.db
      .select()
      .from(runs)
      .where(conds.length ? and(...conds) : undefined)
      .orderBy(desc(runs.n))
      .limit(q.limit + 1);
    const page = rows.slice(0, q.limit);
    return { runs: await this.withOutputs(page.map(toRecord)), next: rows.length > q.limit ? encodeCursor(page[page.length - 1]!.n) : null };
  }

  async claimRuns(q: { owner: string; leaseMs: number; limit: number; reclaimOwn: boolean; exclude: string[] }): Promise<RunRecord[]> {
    const free = or(isNull(runs.owner), isNull(runs.leaseExpiresAt), lt(runs.leaseExpiresAt, sql`now()`), q.reclaimOwn ? eq(runs.owner, q.owner) : sql`false`);
    const candidates = this.db
      .select({ id: runs.id })
      .from(runs)
      .where(
        and(
          // Active runs no one holds, and waiting runs whose wait timed out (no one holds those).
          // (A node that claimed one and died before its first step left it waiting under an expired lease: free too.)
          or(
            and(inArray(runs.status, ACTIVE), free),
            and(
              eq(runs.status, 'waiting'),
              lte(runs.wakeAt, sql`now()`),
              or(isNull(runs.owner), isNull(runs.leaseExpiresAt), lt(runs.leaseExpiresAt, sql`now()`)),
            ),
          ),
          q.exclude.length ? notInArray(runs.id, q.exclude) : undefined,
        ),
      )
      .orderBy(asc(runs.n))
      .limit(q.limit)
      .for('update', { skipLocked: true });
    const rows = await this.db
      .update(runs)
      .set({ owner: q.owner, leaseExpiresAt: leaseUntil(q.leaseMs), updatedAt: isoNow() })
      .where(inArray(runs.id, candidates))
      .returning();
    return rows.sort((a, b) => a.n - b.n).map(toRecord);
  }

  async claimRun(q: { id: string; owner: string; leaseMs: number; from: string }): Promise<RunRecord | undefined> {
    const free = or(eq(runs.owner, q.from), isNull(runs.owner), isNull(runs.leaseExpiresAt), lt(runs.leaseExpiresAt, sql`now()`));
    const [row] = await this.db
      .update(runs)
      .set({ owner: q.owner, leaseExpiresAt: leaseUntil(q.leaseMs), updatedAt: isoNow() })
      .where(and(eq(runs.id, q.id), inArray(runs.status, ACTIVE), free))
      .returning();
    return row ? toRecord(row) : undefined;
  }

  async renewLeases(owner: string, runIds: string[], leaseMs: number): Promise<{ renewed: string[]; cancelRequested: string[]; signalled: string[] }> {
    if (!runIds.length) return { renewed: [], cancelRequested: [], signalled: [] };
    const rows = await this.db
      .update(runs)
      .set({ leaseExpiresAt: leaseUntil(leaseMs) })
      .where(and(eq(runs.owner, owner), inArray(runs.id, runIds)))
      .returning({
        id: runs.id,
        cancelRequested: runs.cancelRequested,
        signalled: sql<boolean>`exists (select 1 from ${signals} where ${signals.runId} = ${runs.id} and ${signals.consumedAt} is null)`,
      });
    return {
      renewed: rows.map((r) => r.id),
      cancelRequested: rows.filter((r) => r.cancelRequested).map((r) => r.id),
      signalled: rows.filter((r) => r.signalled).map((r) => r.id),
    };
  }

  async addSignal(sig: {
    id: string;
    runId: string;
    node: string;
    waitId: string | null;
    payload: unknown;
  }): Promise<{ signal: SignalRecord; duplicate: boolean }> {
    const [row] = await this.db
      .insert(signals)
      .values({ ...sig, payload: sig.payload ?? null, createdAt: isoNow() })
      .onConflictDoNothing()
      .returning();
    if (row) return { signal: toSignal(row), duplicate: false };
    // A second answer to the same wait (or a second early answer for the node): the first stands.
    const [first] = await this.db
      .select()
      .from(signals)
      .where(
        and(
          eq(signals.runId, sig.runId),
          sig.waitId !== null ? eq(signals.waitId, sig.waitId) : and(eq(signals.node, sig.node), isNull(signals.waitId), isNull(signals.consumedAt)),
        ),
      )
      .limit(1);
    if (!first) throw new AoError('AO_INTERNAL', `signal for run ${sig.runId} conflicted but no earlier signal was found`);
    return { signal: toSignal(first), duplicate: true };
  }

  async pendingSignals(runId: string): Promise<SignalRecord[]> {
    const rows = await this.db
      .select()
      .from(signals)
      .where(and(eq(signals.runId, runId), isNull(signals.consumedAt)))
      .orderBy(asc(signals.createdAt), asc(signals.id));
    return rows.map(toSignal);
  }

  async getSignal(runId: string, waitId: string): Promise<SignalRecord | undefined> {
    const [row] = await this.db
      .select()
      .from(signals)
      .where(and(eq(signals.runId, runId), eq(signals.waitId, waitId)))
      .limit(1);
    return row ? toSignal(row) : undefined;
  }

  async wakeRun(q: { id: string; owner: string; leaseMs: number }): Promise<RunRecord | undefined> {
    const [row] = await this.db
      .update(runs)
      .set({ status: 'running', owner: q.owner, leaseExpiresAt: leaseUntil(q.leaseMs), updatedAt: isoNow() })
      .where(and(eq(runs.id, q.id), eq(runs.status, 'waiting'), isNull(runs.owner), sql`jsonb_array_length(${runs.waits}) > 0`))
      .returning();
    return row ? toRecord(row) : undefined;
  }

  async releaseLeases(owner: string, runIds: string[]): Promise<void> {
    if (!runIds.length) return;
    await this.db
      .update(runs)
      .set({ owner: null, leaseExpiresAt: null })
      .where(and(eq(runs.owner, owner), inArray(runs.id, runIds)));
  }

  async requestCancel(runId: string): Promise<boolean> {
    const rows = await this.db
      .update(runs)
      .set({ cancelRequested: true })
      .where(and(eq(runs.id, runId), inArray(runs.status, ['pending', 'running', 'waiting'])))
      .returning({ id: runs.id });
    return rows.length > 0;
  }
}
