import { sql } from 'drizzle-orm';
import {
  bigserial,
  boolean,
  customType,
  index,
  integer,
  json,
  jsonb,
  pgTable,
  primaryKey,
  smallint,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

/** Bytes (the store reads and writes them as base64 text in SQL, the same on every driver). */
const bytea = customType<{ data: string; driverData: string }>({ dataType: () => 'bytea' });

/** One row a run: its state, not its history (that is the event log). */
export const runs = pgTable(
  'runs',
  {
    /** Insertion order, for stable paging. */
    n: bigserial('n', { mode: 'number' }).notNull().unique(),
    id: text('id').primaryKey(),
    graph: text('graph').notNull(),
    graphVersion: text('graph_version').notNull(),
    status: text('status').notNull(),
    input: jsonb('input').notNull(),
    output: jsonb('output'),
    error: jsonb('error'),
    budget: jsonb('budget').notNull(),
    usage: jsonb('usage').notNull(),
    nodes: jsonb('nodes').notNull(),
    traceId: text('trace_id'),
    /** The runtime node that hosts the run, while its lease lasts. */
    owner: text('owner'),
    leaseExpiresAt: timestamp('lease_expires_at', { withTimezone: true, mode: 'string' }),
    /** Set by a cancel request; the hosting node acts on it (any node may receive the request). */
    cancelRequested: boolean('cancel_requested').notNull().default(false),
    /** Seq of the last event written: the journal continues from it. */
    lastSeq: integer('last_seq').notNull().default(0),
    /** For a replay or fork: what it replays (original run, step, mode, overrides) and its first divergence. */
    replay: jsonb('replay'),
    /**
     * Whose run it is: the tenant of the API key that started it (a replay inherits its original's).
     * Runs started without a key (open mode, the CLI's embedded mode) belong to `default`.
     */
    tenant: text('tenant').notNull().default('default'),
    /** The `Idempotency-Key` of the POST /runs that created it, unique per tenant. */
    idempotencyKey: text('idempotency_key'),
    /** sha256 of that request's body: the same key with another body is refused, not answered with this run. */
    requestHash: text('request_hash'),
    /** The waits a person must answer (approval, question, budget); empty unless the run waits. */
    waits: jsonb('waits').notNull().default([]),
    /** A waiting run whose earliest wait times out then is resumed by whichever node claims it. */
    wakeAt: timestamp('wake_at', { withTimezone: true, mode: 'string' }),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'string' }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'string' }).notNull(),
    startedAt: timestamp('started_at', { withTimezone: true, mode: 'string' }),
    finishedAt: timestamp('finished_at', { withTimezone: true, mode: 'string' }),
  },
  (t) => [
    index('runs_status_idx').on(t.status, t.n),
    index('runs_graph_idx').on(t.graph, t.n),
    index('runs_lease_idx').on(t.status, t.leaseExpiresAt),
    index('runs_replay_of_idx').on(sql`(${t.replay}->>'of')`),
    index('runs_tenant_idx').on(t.tenant, t.n),
    index('runs_tenant_status_idx').on(t.tenant, t.status),
    uniqueIndex('runs_tenant_idempotency_idx').on(t.tenant, t.idempotencyKey),
    index('runs_wake_idx').on(t.status, t.wakeAt),
    // An id prefix (`ao show 3f2a9c1e`) is a LIKE 'prefix%' range scan under any collation.
    index('runs_id_prefix_idx').using('btree', t.id.op('text_pattern_ops')),
  ],
);

/**
 * The event log (format 2, see `journal-format.ts`): one row per commit of a run, its envelopes
 * (gapless `seq` per run, unique ids) packed in one JSON body (Postgres compresses a row past
 * about 2 KB: a commit of many envelopes costs less than their sum). `id` is
 * the first envelope's id: a retried commit is skipped, and a different commit at the same first
 * seq is refused. `ids` lists every envelope's id in body order, so a start message is found by id.
 */
export const journal = pgTable(
  'journal',
  {
    id: uuid('id').primaryKey(),
    runId: text('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    /** Seq of the first envelope. */
    seq: integer('seq').notNull(),
    /** Seq of the last envelope. */
    lastSeq: integer('last_seq').notNull(),
    /** The body's format (`JOURNAL_FORMAT`). */
    format: smallint('format').notNull(),
    ids: uuid('ids').array().notNull(),
    /** The first envelope's time; the others are offsets from it. */
    time: timestamp('time', { withTimezone: true, mode: 'string' }).notNull(),
    /** The envelopes (null in a format-4 row: see `packed`). */
    body: json('body'),
    /**
     * The turn records of the commit's model requests (format 3, see `turns.ts`): an agent's
     * conversation, stored once, which the body's payloads refer to; null for a row without.
     */
    turns: json('turns'),
    /** Format 4 (see `journal-zip.ts`): the body's JSON text, deflated. */
    packed: bytea('packed'),
    /** Format 4: the turn records' JSON text, deflated; null for a row without. */
    packedTurns: bytea('packed_turns'),
  },
  (t) => [uniqueIndex('journal_run_seq_idx').on(t.runId, t.seq)],
);

/**
 * Content stored once per run (see `content-refs.ts`): a long string of a payload or a checkpoint,
 * under its hash; journal bodies and checkpoint states hold references to it. Deleted with its run.
 */
export const contents = pgTable(
  'contents',
  {
    runId: text('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    hash: text('hash').notNull(),
    /** The string's JSON-escaped text (what sits between its quotes in JSON). */
    body: text('body').notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.hash] })],
);

/**
 * One row per step of a run (a node finished, a swarm joined, a loop restarted): the state of the
 * run supervisor and of every live actor at that step, never the history, so its size does not
 * grow with the run's length.
 */
export const checkpoints = pgTable(
  'checkpoints',
  {
    runId: text('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    step: integer('step').notNull(),
    /** Seq of the last event committed with this checkpoint. */
    seq: integer('seq').notNull(),
    /** The node whose completion (or failure, skip, retry) made the step. */
    node: text('node'),
    graphVersion: text('graph_version').notNull(),
    /** The state as JSON (checkpoints written before issue 18's compression); null when `zstate` holds it. */
    state: jsonb('state'),
    /** The state's JSON deflated with the store's dictionary (see `row-zip.ts`), as base64 in SQL. */
    zstate: bytea('zstate'),
    /** The state's JSON length. */
    sizeBytes: integer('size_bytes').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'string' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.step] })],
);

/**
 * API keys. Only a hash of each key is stored: a key is `ao_<id>_<secret>` with 256 random bits of
 * secret, so a fast hash (sha256) is enough; there is nothing to brute-force.
 */
export const apiKeys = pgTable('api_keys', {
  /** The public part of the key (in the key itself, in logs, in `ao keys list`). */
  id: text('id').primaryKey(),
  tenant: text('tenant').notNull(),
  name: text('name'),
  /** sha256 (hex) of the whole key. */
  hash: text('hash').notNull(),
  readOnly: boolean('read_only').notNull().default(false),
  createdAt: timestamp('created_at', { withTimezone: true, mode: 'string' }).notNull(),
  revokedAt: timestamp('revoked_at', { withTimezone: true, mode: 'string' }),
});

/**
 * Answers to waits (POST /runs/:id/signal): the run's mailbox for people. A signal is stored
 * before anything else happens, so an answer is never lost (not even one that comes before the
 * wait is registered); the run's host marks it consumed in the commit that resolves the wait.
 * At most one signal per wait (a double click is a no-op) and at most one pending early signal
 * per node.
 */
export const signals = pgTable(
  'signals',
  {
    id: text('id').primaryKey(),
    runId: text('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    node: text('node').notNull(),
    waitId: text('wait_id'),
    payload: jsonb('payload'),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'string' }).notNull(),
    consumedAt: timestamp('consumed_at', { withTimezone: true, mode: 'string' }),
  },
  (t) => [
    uniqueIndex('signals_wait_idx').on(t.runId, t.waitId),
    uniqueIndex('signals_early_idx')
      .on(t.runId, t.node)
      .where(sql`${t.waitId} is null and ${t.consumedAt} is null`),
    index('signals_pending_idx')
      .on(t.runId)
      .where(sql`${t.consumedAt} is null`),
  ],
);

/**
 * Tool results marked secret, encrypted (AES-256-GCM) under the node's AO_SECRET_KEY; the event log
 * holds only their handles. A row belongs to its run (deleted with it); `key_id` names the key it
 * was sealed with, so a wrong key is told apart from a damaged row.
 */
export const secrets = pgTable(
  'secrets',
  {
    runId: text('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    /** `secret:<32 hex>`, derived from the effect key and the value's place in the result. */
    handle: text('handle').notNull(),
    keyId: text('key_id').notNull(),
    /** base64 of the 12-byte GCM nonce. */
    iv: text('iv').notNull(),
    /** base64 of the ciphertext followed by the 16-byte GCM tag. */
    data: text('data').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'string' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.handle] })],
);

/**
 * Who holds each runtime node id (see `NodeIdentity`): one live process per id. Leases and every
 * commit are fenced by the owner id alone, so two processes with one id would be two writers of
 * the same runs; a process takes its id here before it claims anything, and keeps it by beating.
 */
export const nodeIds = pgTable('node_ids', {
  id: text('id').primaryKey(),
  /** A random token per process: a restarted process tells itself from the one before it. */
  instance: text('instance').notNull(),
  host: text('host').notNull(),
  /** The process's pid namespace (Linux: `/proc/self/ns/pid`), so a pid is compared only where it means the same process. */
  pidNs: text('pid_ns').notNull(),
  pid: integer('pid').notNull(),
  /** After how long without a beat the holder is taken for dead (its lease). */
  staleMs: integer('stale_ms').notNull(),
  startedAt: timestamp('started_at', { withTimezone: true, mode: 'string' }).notNull(),
  heartbeatAt: timestamp('heartbeat_at', { withTimezone: true, mode: 'string' }).notNull(),
});

/**
 * The LLM profiles' shared limits (see `ProfileLimiter`): one row per profile and one per tenant
 * share in use, each a small JSON state (bucket levels, the time they are taken at, the calls
 * holding a concurrency slot) updated under a row lock by the one pure function every node runs.
 */
export const llmBuckets = pgTable('llm_buckets', {
  key: text('key').primaryKey(),
  state: jsonb('state').notNull(),
});

export const schema = { runs, journal, contents, checkpoints, apiKeys, signals, secrets, nodeIds, llmBuckets };
export type Schema = typeof schema;
