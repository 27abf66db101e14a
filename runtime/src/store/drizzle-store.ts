import { createHash } from 'node:crypto';
import { and, arrayOverlaps, asc, count, desc, eq, gt, gte, inArray, isNotNull, isNull, lt, lte, notInArray, or, sql } from 'drizzle-orm';
import { AoError } from '@ao/graphs';
import { isoNow } from '../clock/mod.js';
import type { Retention } from '@ao/graphs';
import { payloadField } from '../envelope/mod.js';
import type { Envelope } from '../envelope/mod.js';
import type { CommitBatch, ImportedRun, ListRunsQuery, Store } from './port.js';
import { CONTENTS_INSERT, CONTENTS_INSERT_INTO, CONTENTS_ROW_TYPE, GroupAppend, JOURNAL_INSERT, JOURNAL_ROW_TYPE, JOURNAL_ROWS } from './group-append.js';
import { CONTENT_MIN_CHARS, ContentPacker, KnownContents, refsIn, resolveRefs } from './content-refs.js';
import { rebuildRequests, RequestHistories } from './request-history.js';
import { seqBounds } from './seq-bounds.js';
import { journalRowsJson, pendingRefs, setAt, turnsOf, unpackRows } from './journal-format.js';
import { zipState } from './row-zip.js';
import type { JournalRow, Refs } from './journal-format.js';
import type { StoredTurn } from './turns.js';
import { dictionaryRowsOf, inflateText, RowDictionaries, rowText, RowZipper } from './journal-zip.js';
import type { RowsText } from './journal-zip.js';
import { putRefs, stateRefsOf } from './state-refs.js';
import type { RawQuery } from './group-append.js';
import type { ApiKeyRecord, SecretRecord, CheckpointRecord, CheckpointSummary, NewRun, NodeIdClaim, NodeIdHolder, RunRecord, RunStatus, SignalRecord } from './records.js';
import { beatNodeId, nodeIdHolder, releaseNodeId, takeNodeId } from './node-ids.js';
import { apiKeys, checkpoints, contents, journal, runs, secrets, signals } from './schema.js';
import { BucketRows } from './buckets.js';
import type { BucketState, BucketTable, BucketUpdate } from '../llm/limits/mod.js';
import { ACTIVE, APPEND_FREE_SQL, CHECKPOINT_COLUMNS, CREATE_RUNS_SQL, JOURNAL_COLUMNS, NEW_USAGE, OUTPUT_REF, TERMINAL, decodeCursor, encodeCursor, groupable, iso, leaseUntil, outputAsStored, pickImported, rowOf, runFromJson, stateTextOf, toCheckpoint, toKey, toRecord, toSignal } from './store-rows.js';
import type { Db, Row, StoredCheckpoint } from './store-rows.js';

export type { Db } from './store-rows.js';

export class DrizzleStore implements Store, BucketTable {
  constructor(
    readonly kind: 'pglite' | 'postgres',
    private readonly db: Db,
    private readonly onClose: () => Promise<void>,
    private readonly raw?: RawQuery,
    /** Statements of grouped appends in flight at once (PGlite has one connection: 1). */
    maxGroupsInFlight = 4,
    /** Strings at least this long are stored once per run, by reference (see content-refs.ts). */
    private readonly contentMinChars = CONTENT_MIN_CHARS,
  ) {
    this.group = raw ? new GroupAppend(raw, maxGroupsInFlight) : undefined;
  }

  private readonly group: GroupAppend | undefined;
  private buckets: BucketRows | undefined;

  /** The LLM limits' bucket rows (see ./buckets.ts): one table every node of a cluster shares. */
  updateBuckets<T>(keys: readonly string[], fn: (states: ReadonlyMap<string, BucketState>, now: number) => BucketUpdate<T>): Promise<T> {
    this.buckets ??= new BucketRows(this.db);
    return this.buckets.update(keys, fn);
  }
  /** The contents this process knows each recent run has stored. */
  private readonly known = new KnownContents();
  /** Each active run's agents' last requests, which their next ones continue. */
  private readonly histories = new RequestHistories();
  /** Each active run's row its next rows are deflated against. */
  private readonly dicts = new RowDictionaries();
  /** Rows read back that others were deflated against (`run/seq`), their text: a few, recent. */
  private readonly dictTexts = new Map<string, RowsText>();
  /** Outputs this process stored by reference (`run/ref` -> the output's JSON), recent: a run finished here is read back without reading its log. */
  private readonly outputs = new Map<string, string>();

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
    const exists = () => new AoError('AO_RUN_EXISTS', `run ${run.id} is already stored (or its log is, under another id): import it under a new id`, { field: 'run.id', details: { runId: run.id } });
    const now = isoNow();
    const row = await this.db.transaction(async (tx) => {
      const [inserted] = await tx
        .insert(runs)
        .values({ ...pickImported(run), owner: null, leaseExpiresAt: null, cancelRequested: false, lastSeq: sorted.at(-1)?.seq ?? 0, waits: [], wakeAt: null, updatedAt: now })
        .onConflictDoNothing()
        .returning();
      if (!inserted) throw exists();
      // Envelope ids are unique across runs: a log imported before under another run id is refused, not merged.
      const firstIds = rows.length ? chunks.filter((c) => c.length).map((c) => c[0]!.id) : [];
      if (firstIds.length && (await tx.select({ id: journal.id }).from(journal).where(inArray(journal.id, firstIds)).limit(1)).length) throw exists();
      for (const r of rows) await tx.execute(sql`${sql.raw(JOURNAL_INSERT)} from json_to_recordset(${r}::json) as ${sql.raw(JOURNAL_ROW_TYPE)}`);
      for (const c of states) {
        await tx.insert(checkpoints).values({ runId: run.id, step: c.step, seq: c.seq, node: c.node, graphVersion: c.graphVersion, zstate: sql`decode(${zipState(c.text).toString('base64')}, 'base64')`, sizeBytes: Buffer.byteLength(c.text), createdAt: c.createdAt });
      }
      if (pk.fresh.size) await tx.execute(sql`${sql.raw(CONTENTS_INSERT_INTO)} json_to_recordset(${`[${pk.rowsJson()}]`}::json) as ${sql.raw(CONTENTS_ROW_TYPE)} on conflict do nothing`);
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

  async commit(input: CommitBatch): Promise<void> {
    const { checkpoint: one, checkpoints: many, turns, ...rest } = input;
    const cps = [...(one ? [one] : []), ...(many ?? [])];
    const batch = { ...rest, ...(cps.length ? { checkpoints: cps } : {}), ...(rest.patch?.output !== undefined ? { patch: { ...rest.patch, output: outputAsStored(rest.patch.output, rest.events) } } : {}) };
    const maxSeq = batch.events.reduce((m, e) => Math.max(m, e.seq), 0);
    // Long strings go to the run's contents, once; the rows hold references (see content-refs.ts).
    const pk = new ContentPacker(batch.runId, this.known.get(batch.runId), this.contentMinChars);
    // An agent's requests are stored as what they add to its previous one, in turn records the
    // tool results of the same commit refer to (see request-history.ts, turns.ts).
    const hp = this.histories.packer(batch.runId, turns);
    // Rows are deflated against an earlier row of their run (see journal-zip.ts).
    const zip = new RowZipper(this.dicts);
    try {
      await this.commitPacked(batch, maxSeq, pk, rowOf(batch.events, pk, hp, zip));
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
    } else {
      this.histories.landed(batch.runId, hp);
      zip.landed();
    }
  }

  private async commitPacked(batch: Omit<CommitBatch, 'checkpoint' | 'turns'>, maxSeq: number, pk: ContentPacker, row: Row): Promise<void> {
    // Signals consumed with the step (rare: a wait answered) take the transaction below.
    if (this.raw && !batch.patch?.consumeSignals?.length && (batch.events.length || batch.patch || batch.checkpoints)) {
      const owned = batch.owner !== undefined;
      const now = isoNow();
      let found: Array<Record<string, unknown>>;
      if (owned && groupable(batch)) {
        const cps = batch.checkpoints?.map((c) => ({ ...c, seq: c.seq ?? maxSeq }));
        return this.group!.append(batch.runId, batch.owner!, batch.events, { ...(batch.patch?.nodes ? { nodes: batch.patch.nodes } : {}), ...(batch.patch?.usage ? { usage: batch.patch.usage } : {}), ...(cps ? { checkpoints: cps } : {}), contents: pk, pack: row.pack, ...(row.turns ? { turns: row.turns } : {}), zip: row.zip });
      } else if (!batch.patch && !batch.checkpoints) {
        const rows = journalRowsJson(batch.events, row.pack, () => row.turns, row.zip);
        found = await this.raw('ao_append', APPEND_FREE_SQL, [batch.runId, now, maxSeq, rows, `[${pk.rowsJson()}]`]);
      } else {
        found = await this.commitOneStatement(batch, maxSeq, now, pk, row);
      }
      if (owned && Number(found[0]?.owned) === 0) {
        throw new AoError('AO_LEASE_LOST', `node ${batch.owner} no longer holds run ${batch.runId}: another node took it over`, { details: { runId: batch.runId } });
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
          throw new AoError('AO_LEASE_LOST', `node ${batch.owner} no longer holds run ${batch.runId}: another node took it over`, { details: { runId: batch.runId } });
        }
      }
      if (batch.events.length) {
        await tx.execute(sql`${sql.raw(JOURNAL_INSERT)} from json_to_recordset(${journalRowsJson(batch.events, row.pack, () => row.turns, row.zip)}::json) as ${sql.raw(JOURNAL_ROW_TYPE)} on conflict (id) do nothing`);
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
          zstate: sql`decode(${zipState(state).toString('base64')}, 'base64')`,
          sizeBytes: Buffer.byteLength(state),
          createdAt: isoNow(),
        });
      }
      if (pk.fresh.size) await tx.execute(sql`${sql.raw(CONTENTS_INSERT_INTO)} json_to_recordset(${`[${pk.rowsJson()}]`}::json) as ${sql.raw(CONTENTS_ROW_TYPE)} on conflict do nothing`);
    });
  }

  /**
   * A step's commit (run patch, events, checkpoint) as one statement: the run row's UPDATE (built
   * by drizzle, fenced by owner) feeds the events' and the checkpoint's INSERTs in one
   * data-modifying CTE, so the checkpoint's seq is the run's last seq after the update, as in the
   * transaction. The checkpoint state is serialised once (its size is that text's length).
   */
  private async commitOneStatement(batch: Omit<CommitBatch, 'checkpoint' | 'turns'>, maxSeq: number, now: string, pk: ContentPacker, row: Row): Promise<Array<Record<string, unknown>>> {
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
        select ${param(batch.runId)}, ${param(c.step)}::int, ${seq}, ${param(c.node)}, ${param(c.graphVersion)}, decode(${param(zipState(state).toString('base64'))}, 'base64'), ${param(Buffer.byteLength(state))}::int, ${param(now)}::timestamptz from r returning 1)`);
    }
    if (pk.fresh.size) parts.push(`ct as (${CONTENTS_INSERT(param(`[${pk.rowsJson()}]`))} ${batch.owner !== undefined ? 'where exists (select 1 from r)' : ''} on conflict do nothing returning 1)`);
    const text = `with ${parts.join(', ')} select (select count(*) from r)::int as owned`;
    // Named by its text: a run has a handful of patch shapes, each prepared once per connection.
    return this.raw!(`ao_commit_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`, text, values);
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
          or(and(inArray(runs.status, ACTIVE), free), and(eq(runs.status, 'waiting'), lte(runs.wakeAt, sql`now()`), or(isNull(runs.owner), isNull(runs.leaseExpiresAt), lt(runs.leaseExpiresAt, sql`now()`)))),
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

  async addSignal(sig: { id: string; runId: string; node: string; waitId: string | null; payload: unknown }): Promise<{ signal: SignalRecord; duplicate: boolean }> {
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

  /** Runs with their outputs put back where their rows refer to their `run.finished` (one read for all). */
  private async withOutputs(records: RunRecord[]): Promise<RunRecord[]> {
    const known = (r: RunRecord) => (typeof r.output === 'string' ? this.outputs.get(`${r.id}/${r.output}`) : undefined);
    records = records.map((r) => {
      const json = known(r);
      return json === undefined ? r : { ...r, output: JSON.parse(json) as unknown };
    });
    const referring = records.filter((r) => typeof r.output === 'string' && r.output.startsWith(OUTPUT_REF));
    if (!referring.length) return records;
    const found = new Map((await this.eventsById(referring.map((r) => ({ runId: r.id, id: (r.output as string).slice(OUTPUT_REF.length) })))).map((e) => [`${e.runId}/${e.id}`, e]));
    return records.map((r) => {
      if (!referring.includes(r)) return r;
      const id = (r.output as string).slice(OUTPUT_REF.length);
      const env = found.get(`${r.id}/${id}`);
      if (!env) throw new AoError('AO_STORE_CORRUPT', `run ${r.id}: its output refers to envelope ${id}, which its log does not hold`, { details: { runId: r.id } });
      return { ...r, output: payloadField(env.payload, 'output') ?? null };
    });
  }

  async listEventsOfType(runId: string, prefix: string): Promise<Envelope[]> {
    const rows = await this.db.select(JOURNAL_COLUMNS).from(journal).where(eq(journal.runId, runId)).orderBy(asc(journal.seq));
    return this.expand(rows, undefined, (e) => e.type.startsWith(prefix));
  }

  async getEvents(runId: string, ids: string[]): Promise<Envelope[]> {
    if (!ids.length) return [];
    const rows = await this.db
      .select(JOURNAL_COLUMNS)
      .from(journal)
      .where(and(eq(journal.runId, runId), arrayOverlaps(journal.ids, ids)))
      .orderBy(asc(journal.seq));
    const wanted = new Set(ids);
    return this.expand(rows, undefined, (e) => wanted.has(e.id));
  }

  async requestCancel(runId: string): Promise<boolean> {
    const rows = await this.db
      .update(runs)
      .set({ cancelRequested: true })
      .where(and(eq(runs.id, runId), inArray(runs.status, ['pending', 'running', 'waiting'])))
      .returning({ id: runs.id });
    return rows.length > 0;
  }

  async latestCheckpoint(runId: string): Promise<CheckpointRecord | undefined> {
    const rows = await this.db.select(CHECKPOINT_COLUMNS).from(checkpoints).where(eq(checkpoints.runId, runId)).orderBy(desc(checkpoints.step)).limit(1);
    return (await this.checkpointsOf(rows))[0];
  }

  async latestCheckpoints(runIds: string[]): Promise<Map<string, CheckpointRecord>> {
    const out = new Map<string, CheckpointRecord>();
    if (!runIds.length) return out;
    const rows = await this.db
      .selectDistinctOn([checkpoints.runId], CHECKPOINT_COLUMNS)
      .from(checkpoints)
      .where(inArray(checkpoints.runId, runIds))
      .orderBy(checkpoints.runId, desc(checkpoints.step));
    for (const cp of await this.checkpointsOf(rows)) out.set(cp.runId, cp);
    return out;
  }

  async firstEvents(runIds: string[]): Promise<Map<string, Envelope>> {
    const out = new Map<string, Envelope>();
    if (!runIds.length) return out;
    const rows = await this.db.select(JOURNAL_COLUMNS).from(journal).where(and(inArray(journal.runId, runIds), eq(journal.seq, 1)));
    for (const e of await this.expand(rows, undefined, (e) => e.seq === 1)) out.set(e.runId, e);
    return out;
  }

  async eventsById(refs: ReadonlyArray<{ runId: string; id: string; upTo?: number }>): Promise<Envelope[]> {
    if (!refs.length) return [];
    const ids = refs.map((r) => r.id);
    const bounds = seqBounds(refs);
    const rows = await (bounds
      ? this.db
          .select(JOURNAL_COLUMNS)
          .from(journal)
          .innerJoin(sql`unnest(${sql.param([...bounds.keys()])}::text[], ${sql.param([...bounds.values()])}::int[]) as f(run_id, up_to)`, sql`${journal.runId} = f.run_id and ${journal.seq} <= f.up_to`)
          .where(arrayOverlaps(journal.ids, ids))
      : this.db
          .select(JOURNAL_COLUMNS)
          .from(journal)
          .where(and(inArray(journal.runId, [...new Set(refs.map((r) => r.runId))]), arrayOverlaps(journal.ids, ids)))
    ).orderBy(asc(journal.runId), asc(journal.seq));
    const wanted = new Set(refs.map((r) => `${r.runId}/${r.id}`));
    return this.expand(rows, undefined, (e) => wanted.has(`${e.runId}/${e.id}`));
  }

  async eventsAfter(ranges: ReadonlyArray<{ runId: string; after: number }>, o: { bases?: ReadonlyMap<string, readonly unknown[]> } = {}): Promise<Map<string, Envelope[]>> {
    const out = new Map<string, Envelope[]>(ranges.map((r) => [r.runId, []]));
    if (!ranges.length) return out;
    const after = new Map(ranges.map((r) => [r.runId, r.after]));
    const rows = await this.db
      .select(JOURNAL_COLUMNS)
      .from(journal)
      .innerJoin(
        sql`unnest(${sql.param(ranges.map((r) => r.runId))}::text[], ${sql.param(ranges.map((r) => r.after))}::int[]) as f(run_id, after)`,
        sql`${journal.runId} = f.run_id and ${journal.lastSeq} > f.after`,
      )
      .orderBy(asc(journal.runId), asc(journal.seq));
    for (const e of await this.expand(rows, new Map(o.bases), (e) => e.seq > after.get(e.runId)!)) out.get(e.runId)!.push(e);
    return out;
  }

  async turnsSince(ranges: ReadonlyArray<{ runId: string; from: number }>): Promise<Map<string, StoredTurn[]>> {
    const out = new Map<string, StoredTurn[]>(ranges.map((r) => [r.runId, []]));
    if (!ranges.length) return out;
    const from = new Map(ranges.map((r) => [r.runId, r.from]));
    // Only the records: a row's body is not read (nor detoasted).
    const stored = await this.db
      .select({ runId: journal.runId, seq: journal.seq, turns: sql<string | null>`${journal.turns}::text`, zt: sql<string | null>`encode(${journal.packedTurns}, 'base64')` })
      .from(journal)
      .innerJoin(
        sql`unnest(${sql.param(ranges.map((r) => r.runId))}::text[], ${sql.param(ranges.map((r) => r.from))}::int[]) as f(run_id, from_seq)`,
        sql`${journal.runId} = f.run_id and ${journal.lastSeq} >= f.from_seq and (${journal.turns} is not null or ${journal.packedTurns} is not null)`,
      )
      .orderBy(asc(journal.runId), asc(journal.seq));
    const rows = (await this.inflate(stored.map((r) => ({ ...r, body: null, z: null })))).map((r) => ({ runId: r.runId, seq: r.seq, turns: r.turns as string }));
    const content = await this.contentsOf(rows.map((r) => ({ runId: r.runId, text: r.turns })));
    for (const r of rows) {
      const text = content ? resolveRefs(r.turns, (h) => content.get(`${r.runId}/${h}`), `turn records at seq ${r.seq} of run ${r.runId}`) : r.turns;
      for (const t of turnsOf({ turns: text })) if (t.q >= from.get(r.runId)!) out.get(r.runId)!.push(t);
    }
    return out;
  }

  primeRequests(runId: string, last: ReadonlyMap<string, { seq: number; messages: readonly unknown[] }>): void {
    this.histories.prime(runId, last);
  }

  async getCheckpoint(runId: string, step: number): Promise<CheckpointRecord | undefined> {
    const rows = await this.db
      .select(CHECKPOINT_COLUMNS)
      .from(checkpoints)
      .where(and(eq(checkpoints.runId, runId), eq(checkpoints.step, step)))
      .limit(1);
    return (await this.checkpointsOf(rows))[0];
  }

  async listCheckpoints(runId: string): Promise<CheckpointSummary[]> {
    const rows = await this.db
      .select({
        runId: checkpoints.runId,
        step: checkpoints.step,
        seq: checkpoints.seq,
        node: checkpoints.node,
        graphVersion: checkpoints.graphVersion,
        sizeBytes: checkpoints.sizeBytes,
        createdAt: checkpoints.createdAt,
      })
      .from(checkpoints)
      .where(eq(checkpoints.runId, runId))
      .orderBy(asc(checkpoints.step));
    return rows.map((r) => ({ ...r, createdAt: iso(r.createdAt)! }));
  }

  async putSecrets(rows: SecretRecord[]): Promise<void> {
    if (!rows.length) return;
    const createdAt = isoNow();
    await this.db
      .insert(secrets)
      .values(rows.map((r) => ({ ...r, createdAt })))
      .onConflictDoUpdate({ target: [secrets.runId, secrets.handle], set: { keyId: sql`excluded.key_id`, iv: sql`excluded.iv`, data: sql`excluded.data`, createdAt } });
  }

  async getSecrets(runIds: string[], handles: string[]): Promise<SecretRecord[]> {
    if (!runIds.length || !handles.length) return [];
    return this.db
      .select({ runId: secrets.runId, handle: secrets.handle, keyId: secrets.keyId, iv: secrets.iv, data: secrets.data })
      .from(secrets)
      .where(and(inArray(secrets.runId, runIds), inArray(secrets.handle, handles)));
  }

  takeNodeId(claim: NodeIdClaim & { replacing?: string }): Promise<{ taken: true } | { taken: false; holder: NodeIdHolder | undefined }> {
    return takeNodeId(this.db, claim);
  }

  beatNodeId(id: string, instance: string): Promise<boolean> {
    return beatNodeId(this.db, id, instance);
  }

  releaseNodeId(id: string, instance: string): Promise<void> {
    return releaseNodeId(this.db, id, instance);
  }

  nodeIdHolder(id: string): Promise<NodeIdHolder | undefined> {
    return nodeIdHolder(this.db, id);
  }

  async sweep(graph: string, policy: Retention): Promise<{ runs: number; checkpoints: number }> {
    let deletedRuns = 0;
    let deletedCheckpoints = 0;
    if (policy.ttlSec !== undefined) {
      const gone = await this.db
        .delete(runs)
        .where(and(eq(runs.graph, graph), inArray(runs.status, TERMINAL), lt(runs.finishedAt, sql`now() - ${policy.ttlSec} * interval '1 second'`)))
        .returning({ id: runs.id });
      deletedRuns = gone.length;
    }
    if (policy.keepCheckpoints !== undefined) {
      const finished = this.db.select({ id: runs.id }).from(runs).where(and(eq(runs.graph, graph), inArray(runs.status, TERMINAL)));
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
        .returning({ runId: checkpoints.runId, step: checkpoints.step, state: sql<string | null>`case when strpos(${checkpoints.state}::text, chr(57344)) > 0 then ${checkpoints.state}::text end`, zstate: sql<string | null>`encode(${checkpoints.zstate}, 'base64')` });
      deletedCheckpoints = gone.length;
      const candidates = new Map<string, Set<string>>();
      for (const g of gone) {
        const text = g.zstate ? stateTextOf(g) : g.state;
        for (const h of text ? refsIn(text) : []) candidates.set(g.runId, (candidates.get(g.runId) ?? new Set()).add(h));
      }
      for (const [runId, hashes] of candidates) await this.collectContents(runId, hashes);
    }
    return { runs: deletedRuns, checkpoints: deletedCheckpoints };
  }

  /**
   * Delete the contents among `hashes` of a finished run that nothing of it references any more:
   * no checkpoint kept, no journal row (a journal row is never deleted but with its run). Called
   * after checkpoints that referenced them were deleted; a kept checkpoint reads whole, as before.
   */
  private async collectContents(runId: string, hashes: Set<string>): Promise<void> {
    const kept = await this.db
      .select({ runId: checkpoints.runId, step: checkpoints.step, state: sql<string | null>`${checkpoints.state}::text`, zstate: sql<string | null>`encode(${checkpoints.zstate}, 'base64')` })
      .from(checkpoints)
      .where(and(eq(checkpoints.runId, runId), or(isNotNull(checkpoints.zstate), sql`strpos(${checkpoints.state}::text, chr(57344)) > 0`)));
    for (const k of kept) for (const h of refsIn(stateTextOf(k))) hashes.delete(h);
    if (!hashes.size) return;
    // The run's rows, as stored (inflated, their references not resolved).
    const rows = await this.inflate(await this.db.select(JOURNAL_COLUMNS).from(journal).where(eq(journal.runId, runId)));
    for (const r of rows) for (const text of [r.body, r.turns]) if (typeof text === 'string') for (const h of refsIn(text)) hashes.delete(h);
    if (hashes.size) await this.db.delete(contents).where(and(eq(contents.runId, runId), inArray(contents.hash, [...hashes])));
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

  /**
   * Format-4 rows inflated: body and turn records as JSON text (what was deflated). The rows they
   * were deflated against (their run's first rows) are read once and their text remembered. A row
   * given without its body (`z` null: a read of records alone) gets its records only.
   */
  private async inflate<R extends Pick<JournalRow, 'runId' | 'seq' | 'body' | 'turns' | 'z' | 'zt'>>(rows: R[]): Promise<R[]> {
    if (!rows.some((r) => r.z || r.zt)) return rows;
    const zipped = rows.map((r) => ({ z: r.z ? Buffer.from(r.z, 'base64') : undefined, zt: r.zt ? Buffer.from(r.zt, 'base64') : undefined }));
    const dicts = new Map<string, RowsText>();
    for (const [i, r] of rows.entries()) {
      const { z, zt } = zipped[i]!;
      // Both of a row's texts are deflated against the same rows.
      const named = z || zt ? dictionaryRowsOf((z ?? zt)!) : undefined;
      if (named) dicts.set(`${r.runId}/${named.from}-${named.to}`, await this.dictionaryOf(r.runId, named.from, named.to, 0));
    }
    return rows.map((r, i) => {
      const { z, zt } = zipped[i]!;
      if (!z && !zt) return r;
      const named = dictionaryRowsOf((z ?? zt)!);
      const dict = named ? dicts.get(`${r.runId}/${named.from}-${named.to}`) : undefined;
      const where = `journal row at seq ${r.seq} of run ${r.runId}`;
      return { ...r, ...(z ? { body: inflateText(z, dict, where) } : {}), ...(zt ? { turns: inflateText(zt, dict, where) } : {}), z: null, zt: null };
    });
  }

  /** The text of a run's rows from seq `from` to `to` (a dictionary of later rows), remembered. */
  private async dictionaryOf(runId: string, from: number, to: number, depth: number): Promise<RowsText> {
    const key = `${runId}/${from}-${to}`;
    const known = this.dictTexts.get(key);
    if (known) return known;
    const found = await this.db
      .select({ seq: journal.seq, body: sql<string | null>`${journal.body}::text`, turns: sql<string | null>`${journal.turns}::text`, z: sql<string | null>`encode(${journal.packed}, 'base64')`, zt: sql<string | null>`encode(${journal.packedTurns}, 'base64')` })
      .from(journal)
      .where(and(eq(journal.runId, runId), gte(journal.seq, from), lte(journal.seq, to)))
      .orderBy(asc(journal.seq));
    const texts: string[] = [];
    for (const f of found) {
      const where = `journal row at seq ${f.seq} of run ${runId}`;
      const z = f.z ? Buffer.from(f.z, 'base64') : undefined;
      const zt = f.zt ? Buffer.from(f.zt, 'base64') : undefined;
      if (!z) {
        texts.push(rowText(f.body ?? '', f.turns ?? undefined));
        continue;
      }
      // Normally deflated against none; one stored by an earlier writer may name its own rows.
      const named = dictionaryRowsOf(z);
      if (named && depth >= 3) throw new AoError('AO_STORE_CORRUPT', `${where} is part of a chain of dictionaries too long to be a log's`);
      const dict = named ? await this.dictionaryOf(runId, named.from, named.to, depth + 1) : undefined;
      texts.push(rowText(inflateText(z, dict, where), zt ? inflateText(zt, dict, where) : undefined));
    }
    const rows: RowsText = { from, to, text: texts.join('\n') };
    if (this.dictTexts.size >= 256) this.dictTexts.delete(this.dictTexts.keys().next().value!);
    this.dictTexts.set(key, rows);
    return rows;
  }

  /** Rows with their content references resolved (one read of the contents they name). */
  private async resolve(stored: JournalRow[]): Promise<JournalRow[]> {
    const rows = await this.inflate(stored);
    const content = await this.contentsOf(rows.flatMap((r) => [{ runId: r.runId, text: r.body as string }, ...(typeof r.turns === 'string' ? [{ runId: r.runId, text: r.turns }] : [])]));
    if (!content) return rows;
    const where = (r: JournalRow) => `journal row at seq ${r.seq} of run ${r.runId}`;
    return rows.map((r) => ({
      ...r,
      body: resolveRefs(r.body as string, (h) => content.get(`${r.runId}/${h}`), where(r)),
      ...(typeof r.turns === 'string' ? { turns: resolveRefs(r.turns, (h) => content.get(`${r.runId}/${h}`), where(r)) } : {}),
    }));
  }

  /**
   * The envelopes of rows (of any runs, each run's in seq order): contents resolved and requests
   * rebuilt from their deltas; a run whose rows continue requests made before them is read from
   * its start first. `bases` carries requests already rebuilt (a read in pages passes it on).
   */
  private async expand(rows: JournalRow[], bases = new Map<string, readonly unknown[]>(), keep?: (e: Envelope) => boolean): Promise<Envelope[]> {
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
  private async settle(envs: Envelope[]): Promise<Envelope[]> {
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
    const corrupt = (e: Envelope, why: string) => new AoError('AO_STORE_CORRUPT', `${e.type} at seq ${e.seq} of run ${e.runId} ${why}`);
    const put = (e: Envelope, refs: Refs | undefined, kind: 't' | 'e'): Envelope => {
      let payload = e.payload;
      for (const [path, ref] of refs ?? []) {
        if (ref[0] !== kind) continue;
        if (ref[0] === 't') {
          const used = (records.get(e.runId) ?? []).filter((r) => r.a === ref[1]).flatMap((r) => r.u ?? []);
          if (used.length < ref[2]) throw corrupt(e, `lists ${ref[2]} tool calls of ${ref[1]}, whose turn records hold ${used.length}`);
          payload = setAt(payload, path, used.slice(0, ref[2]));
        } else if (ref[0] === 'e') {
          const target = byId.get(`${e.runId}/${ref[1]}`);
          if (!target) throw corrupt(e, `refers to envelope ${ref[1]}, which the run's log does not hold`);
          payload = setAt(payload, path, ref.slice(2).reduce<unknown>((v, k) => (v as Record<string, unknown> | null)?.[k], target.payload));
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

  /** Rows' envelopes with their requests rebuilt (see `expand`). */
  private async rebuild(rows: JournalRow[], bases: Map<string, readonly unknown[]>): Promise<Envelope[]> {
    const envs = unpackRows(await this.resolve(rows));
    // Rebuilt again from here if earlier rows must be read: what this pass adds is after them.
    const before = new Map(bases);
    const first = rebuildRequests(envs, bases);
    if (!first.missing.size) return first.envelopes;
    for (const runId of first.missing) {
      const from = Math.min(...rows.filter((r) => r.runId === runId).map((r) => r.seq));
      const earlier = await this.db.select(JOURNAL_COLUMNS).from(journal).where(and(eq(journal.runId, runId), lt(journal.seq, from))).orderBy(asc(journal.seq));
      rebuildRequests(unpackRows(await this.resolve(earlier)), before);
    }
    const again = rebuildRequests(envs, before);
    if (again.missing.size) throw new AoError('AO_STORE_CORRUPT', `run ${[...again.missing][0]} has a request that continues one its log does not hold`);
    bases.clear();
    for (const [k, v] of before) bases.set(k, v);
    return again.envelopes;
  }

  private async checkpointsOf(rows: StoredCheckpoint[]): Promise<CheckpointRecord[]> {
    const texts = rows.map(stateTextOf);
    const content = await this.contentsOf(rows.map((r, i) => ({ runId: r.runId, text: texts[i]! })));
    const states = rows.map((r, i) => JSON.parse(content ? resolveRefs(texts[i]!, (h) => content.get(`${r.runId}/${h}`), `checkpoint ${r.step} of run ${r.runId}`) : texts[i]!) as unknown);
    // Parts held by the log (node outputs): one read of the envelopes they name, for all of them.
    const wanted = rows.flatMap((r, i) => stateRefsOf(states[i]).map((ref) => ({ runId: r.runId, id: ref.id })));
    if (wanted.length) {
      const byId = new Map((await this.eventsById(wanted)).map((e) => [`${e.runId}/${e.id}`, e]));
      rows.forEach((r, i) => putRefs(states[i], (id) => byId.get(`${r.runId}/${id}`), `checkpoint ${r.step} of run ${r.runId}`));
    }
    return rows.map(({ zstate: _z, ...r }, i) => toCheckpoint({ ...r, state: states[i] }));
  }

  /** The contents these stored texts reference (by `run/hash`), or undefined when they reference none. */
  private async contentsOf(texts: ReadonlyArray<{ runId: string; text: string }>): Promise<Map<string, string> | undefined> {
    const runIds = new Set<string>();
    const hashes = new Set<string>();
    for (const { runId, text } of texts) {
      for (const h of refsIn(text)) {
        runIds.add(runId);
        hashes.add(h);
      }
    }
    if (!hashes.size) return undefined;
    const found = await this.db
      .select({ runId: contents.runId, hash: contents.hash, body: contents.body })
      .from(contents)
      .where(and(inArray(contents.runId, [...runIds]), inArray(contents.hash, [...hashes])));
    return new Map(found.map((c) => [`${c.runId}/${c.hash}`, c.body]));
  }

  close(): Promise<void> {
    return this.onClose();
  }
}
