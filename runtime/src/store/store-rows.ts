// The rows of the store's tables and the SQL of its one-statement writes, as DrizzleStore reads and
// writes them: converters from rows to records, the journal's and checkpoints' selected columns,
// run ids' cursors, a commit's packed row. Moved out of drizzle-store.ts (issue 23, pure move).
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { AoError } from '@ao/graphs';
import { payloadField } from '../envelope/mod.js';
import type { Envelope } from '../envelope/mod.js';
import type { CommitBatch, ImportedRun } from './port.js';
import { CONTENTS_INSERT, JOURNAL_INSERT, JOURNAL_ROWS } from './group-append.js';
import type { ContentPacker } from './content-refs.js';
import type { HistoryPacker } from './request-history.js';
import { stateBaseOf, unzipState } from './row-zip.js';
import type { StateZipper } from './row-zip.js';
import type { PackedPayload } from './journal-format.js';
import type { RowZipper } from './journal-zip.js';
import { CheckpointRecordSchema, RunRecordSchema, TERMINAL_STATUSES } from './records.js';
import type { ApiKeyRecord, CheckpointRecord, RunRecord, RunStatus, SignalRecord } from './records.js';
import { checkpoints, journal } from './schema.js';
import type { apiKeys, runs, Schema, signals } from './schema.js';

/** The one drizzle database type both drivers give (a union of the two breaks the query API). */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;

export const encodeCursor = (n: number) => Buffer.from(String(n)).toString('base64url');
export const decodeCursor = (c: string): number => {
  const text = /^[A-Za-z0-9_-]+$/.test(c) ? Buffer.from(c, 'base64url').toString() : '';
  const n = /^[1-9][0-9]{0,15}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) throw new AoError('AO_VALIDATION', 'invalid cursor: pass back the `next` of a previous page', { field: 'query.cursor' });
  return n;
};

/** Timestamps come back as Postgres text; normalise to ISO 8601 UTC. */
export const iso = (v: string | null): string | null => (v === null ? null : new Date(v).toISOString());

export function toRecord(row: typeof runs.$inferSelect): RunRecord {
  const r = RunRecordSchema.safeParse({
    ...row,
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
    startedAt: iso(row.startedAt),
    finishedAt: iso(row.finishedAt),
    leaseExpiresAt: iso(row.leaseExpiresAt),
    wakeAt: iso(row.wakeAt),
  });
  if (!r.success) throw new AoError('AO_STORE_CORRUPT', `run ${row.id}: ${r.error.issues[0]?.message}`, { details: { runId: row.id } });
  return r.data;
}

export function toKey(row: typeof apiKeys.$inferSelect): ApiKeyRecord {
  return { ...row, createdAt: iso(row.createdAt)!, revokedAt: iso(row.revokedAt) };
}

export function toSignal(row: typeof signals.$inferSelect): SignalRecord {
  return { ...row, createdAt: iso(row.createdAt)!, consumedAt: iso(row.consumedAt) };
}

export function toCheckpoint(row: Omit<typeof checkpoints.$inferSelect, 'state' | 'zstate'> & { state: unknown }): CheckpointRecord {
  const r = CheckpointRecordSchema.safeParse({ ...row, createdAt: iso(row.createdAt) });
  if (!r.success) throw new AoError('AO_STORE_CORRUPT', `checkpoint ${row.step} of run ${row.runId}: ${r.error.issues[0]?.message}`);
  return r.data;
}

/** The fields of an imported run's row it brings (a whole RunRecord may be passed: its lease, key and waits stay behind). */
export function pickImported(r: ImportedRun['run']): ImportedRun['run'] {
  const { id, graph, graphVersion, status, input, output, error, budget, usage, nodes, traceId, replay, tenant, createdAt, startedAt, finishedAt } = r;
  return { id, graph, graphVersion, status, input, output, error, budget, usage, nodes, traceId, replay, tenant, createdAt, startedAt, finishedAt };
}

export const ACTIVE: RunStatus[] = ['pending', 'running'];
export const TERMINAL = [...TERMINAL_STATUSES];
export const leaseUntil = (ms: number) => sql`now() + ${ms} * interval '1 millisecond'`;

/** A new run's usage: nothing used yet. */
export const NEW_USAGE = JSON.stringify({ inputTokens: 0, outputTokens: 0, totalTokens: 0, llmCalls: 0, toolCalls: 0, perTool: {} });

/**
 * New runs, from a JSON array of rows (see `createRuns`), each pending, its lease taken in the
 * same statement; a run whose tenant has its idempotency key already is skipped. Each stored run
 * comes back as one JSON object (its row as `row_to_json` writes it), not two dozen columns.
 */
export const CREATE_RUNS_SQL = `insert into runs (id, graph, graph_version, status, input, budget, usage, nodes, trace_id, owner, lease_expires_at, replay, tenant, idempotency_key, request_hash, created_at, updated_at)
  select r.id, r.graph, r.graph_version, 'pending', r.input, r.budget, $2::jsonb, r.nodes, r.trace_id, r.owner,
    now() + r.lease_ms * interval '1 millisecond', r.replay, r.tenant, r.idempotency_key, r.request_hash, $3::timestamptz, $3::timestamptz
  from json_to_recordset($1::json) as r(id text, graph text, graph_version text, input jsonb, budget jsonb, nodes jsonb, trace_id text, owner text, lease_ms int,
    replay jsonb, tenant text, idempotency_key text, request_hash text)
  on conflict do nothing
  returning row_to_json(runs.*) as row`;

/** A run's row as `row_to_json` gives it (snake case), in the shape drizzle reads rows in. */
export function runFromJson(o: Record<string, unknown>): typeof runs.$inferSelect {
  return {
    n: o.n as number,
    id: o.id as string,
    graph: o.graph as string,
    graphVersion: o.graph_version as string,
    status: o.status as string,
    input: o.input,
    output: o.output,
    error: o.error,
    budget: o.budget,
    usage: o.usage,
    nodes: o.nodes,
    traceId: o.trace_id as string | null,
    owner: o.owner as string | null,
    leaseExpiresAt: o.lease_expires_at as string | null,
    cancelRequested: o.cancel_requested as boolean,
    lastSeq: o.last_seq as number,
    replay: o.replay,
    tenant: o.tenant as string,
    idempotencyKey: o.idempotency_key as string | null,
    requestHash: o.request_hash as string | null,
    waits: o.waits,
    wakeAt: o.wake_at as string | null,
    createdAt: o.created_at as string,
    updatedAt: o.updated_at as string,
    startedAt: o.started_at as string | null,
    finishedAt: o.finished_at as string | null,
  };
}

/** A journal row as read: its body and turn records as stored JSON text (content references not yet resolved). */
export const JOURNAL_COLUMNS = {
  runId: journal.runId,
  seq: journal.seq,
  lastSeq: journal.lastSeq,
  format: journal.format,
  ids: journal.ids,
  time: journal.time,
  body: sql<string | null>`${journal.body}::text`,
  turns: sql<string | null>`${journal.turns}::text`,
  z: sql<string | null>`encode(${journal.packed}, 'base64')`,
  zt: sql<string | null>`encode(${journal.packedTurns}, 'base64')`,
};

/**
 * A finished run's output as its row holds it (issue 22): a reference to its `run.finished`, whose
 * payload holds it (by reference to its nodes' outputs, to their agents' turn records), when it
 * is that envelope's output; the store puts it back when it reads the row. An agent's output lists
 * its tool calls with their results: the row would hold the whole conversation's results again.
 */
export const OUTPUT_REF = '\uE000run.finished:';

export function outputAsStored(output: unknown, events: readonly Envelope[]): unknown {
  if (typeof output !== 'object' || output === null) return output;
  const finished = events.find((e) => e.type === 'run.finished');
  const held = payloadField(finished?.payload, 'output');
  if (!finished || (held !== output && JSON.stringify(held) !== JSON.stringify(output))) return output;
  return `${OUTPUT_REF}${finished.id}`;
}

/** How one row of a commit stores its payloads: turn records and request deltas, then content references. */
export interface Row {
  pack: (json: string, env: Envelope) => PackedPayload;
  /** The row's turn records (JSON), if any. */
  turns?: string;
  /** How the row is deflated (format 4). */
  zip: RowZipper;
  /** How the commit's checkpoint states are deflated (against their run's keyframe). */
  states?: StateZipper;
}

export function rowOf(events: readonly Envelope[], pk: ContentPacker, hp: HistoryPacker, zip: RowZipper, states?: StateZipper): Row {
  const sorted = events.some((e, i) => i > 0 && e.seq < events[i - 1]!.seq) ? [...events].sort((a, b) => a.seq - b.seq) : events;
  const plan = hp.row(sorted);
  return {
    pack: (json, env) => {
      const p = plan.pack(json, env);
      return typeof p === 'string' ? pk.pack(p) : { json: pk.pack(p.json), refs: p.refs };
    },
    ...(plan.turns ? { turns: pk.pack(plan.turns) } : {}),
    zip,
    ...(states ? { states } : {}),
  };
}
/** A checkpoint as read: its state as stored JSON text. */
export const CHECKPOINT_COLUMNS = {
  runId: checkpoints.runId,
  step: checkpoints.step,
  seq: checkpoints.seq,
  node: checkpoints.node,
  graphVersion: checkpoints.graphVersion,
  state: sql<string | null>`${checkpoints.state}::text`,
  zstate: sql<string | null>`encode(${checkpoints.zstate}, 'base64')`,
  sizeBytes: checkpoints.sizeBytes,
  createdAt: checkpoints.createdAt,
};
export type StoredCheckpoint = {
  [K in keyof typeof CHECKPOINT_COLUMNS]: K extends 'state' ? string | null : (typeof checkpoints.$inferSelect)[K & keyof typeof checkpoints.$inferSelect];
};
/** A checkpoint's state as stored JSON text: deflated (`zstate`) or, written before that, as `state`. */
export function stateTextOf(r: Pick<StoredCheckpoint, 'state' | 'zstate' | 'runId' | 'step'>): string {
  if (r.zstate) {
    const z = Buffer.from(r.zstate, 'base64');
    // One deflated against a keyframe is read with it (state-texts.ts).
    if (stateBaseOf(z) !== undefined) throw new AoError('AO_STORE_CORRUPT', `checkpoint ${r.step} of run ${r.runId} was read without its keyframe`);
    return unzipState(z);
  }
  if (r.state === null) throw new AoError('AO_STORE_CORRUPT', `checkpoint ${r.step} of run ${r.runId} holds no state`);
  return r.state;
}

/**
 * A commit that only moves a hosted run on (events, node states, usage, checkpoints at their own
 * seqs) can share one statement with other runs' (see GroupAppend); status changes, leases,
 * waits and signals take a statement of their own.
 */
export function groupable(batch: Omit<CommitBatch, 'checkpoint'>): boolean {
  if (batch.patch && Object.keys(batch.patch).some((k) => k !== 'nodes' && k !== 'usage')) return false;
  return (batch.checkpoints ?? []).every((c) => c.seq !== undefined) || batch.events.length > 0;
}

/**
 * An append of events with no patch or checkpoint by a caller that holds no lease (tests, tools):
 * one statement, the run row updated first; the hosted runs' appends go through {@link GroupAppend}.
 */
export const APPEND_FREE_SQL = `with r as (
    update runs set updated_at = $2::timestamptz, last_seq = greatest(last_seq, $3::int) where id = $1 returning 1
  ), ins as (
    ${JOURNAL_INSERT} from ${JOURNAL_ROWS('$4')}
    on conflict (id) do nothing
    returning 1
  ), ct as (
    ${CONTENTS_INSERT('$5')} on conflict do nothing returning 1
  ) select (select count(*) from r)::int as owned`;
