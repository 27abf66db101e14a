import type { Retention } from '@ao/graphs';
import type { Envelope } from '../envelope/mod.js';
import type { StoredTurn, TurnExtras } from './turns.js';
import type {
  ApiKeyRecord,
  SecretRecord,
  CheckpointRecord,
  CheckpointSummary,
  CheckpointWrite,
  NewRun,
  NodeIdClaim,
  NodeIdHolder,
  RunPatch,
  RunRecord,
  RunStatus,
  SignalRecord,
} from './records.js';

/**
 * A finished run recorded elsewhere (an `ao export` file, see run-file/), as
 * {@link Store.importRun} inserts it: its row as it ended, its whole log and its checkpoints.
 */
export interface ImportedRun {
  run: Pick<
    RunRecord,
    | 'id'
    | 'graph'
    | 'graphVersion'
    | 'status'
    | 'input'
    | 'output'
    | 'error'
    | 'budget'
    | 'usage'
    | 'nodes'
    | 'traceId'
    | 'replay'
    | 'tenant'
    | 'createdAt'
    | 'startedAt'
    | 'finishedAt'
  >;
  /** Every envelope, seq 1 to the last, gapless. */
  events: Envelope[];
  /** Its checkpoints, each with the seq of the last envelope it reflects. */
  checkpoints: Array<Pick<CheckpointRecord, 'step' | 'seq' | 'node' | 'graphVersion' | 'state' | 'createdAt'>>;
}

export interface ListRunsQuery {
  status?: RunStatus;
  graph?: string;
  /** Only this tenant's runs (the gateway always passes the caller's). */
  tenant?: string;
  limit: number;
  /** Opaque cursor from a previous page's `next`. */
  cursor?: string;
  /** Only runs whose id starts with this (case-sensitive; ids are lower-case uuids): an index range scan. */
  idPrefix?: string;
  /** Only runs created at or after this instant (ISO 8601). */
  since?: string;
  /** Only runs created before this instant (ISO 8601). */
  until?: string;
}

/**
 * Durable state: runs and the event log. Adapters: PGlite (embedded, file-backed) and Postgres,
 * sharing one drizzle schema and one implementation ({@link DrizzleStore}).
 */
/** One commit of a run: its events, a run patch, and the checkpoints of the steps it carries (in step order). */
export interface CommitBatch {
  runId: string;
  events: Envelope[];
  patch?: RunPatch;
  checkpoint?: CheckpointWrite;
  checkpoints?: CheckpointWrite[];
  owner?: string;
  /** What agent loops add to the turn records of their requests among `events`, by request envelope id (see `turns.ts`). */
  turns?: ReadonlyMap<string, TurnExtras>;
  /** The run this one replays (a replay or fork): its turn records may name the original's instead of holding them again. */
  original?: string;
}

export interface Store {
  readonly kind: 'pglite' | 'postgres';
  /**
   * Insert a run (leased to its owner). A replay without a `tenant` gets its original's.
   * @throws AoError `AO_IDEMPOTENCY_KEY_REUSED` when the tenant already has a run with this `idempotencyKey`.
   */
  createRun(run: NewRun): Promise<RunRecord>;
  /**
   * Insert a whole finished run as it was recorded (`ao import`), in one transaction: its row
   * as it ended (held by no one, so no node resumes it), its log as journal rows (one per step,
   * cut at its checkpoints' seqs, as the commits that wrote it were) and its checkpoints.
   * @throws AoError `AO_RUN_EXISTS` when a run with this id, or one of its envelope ids, is stored
   * already (nothing is written).
   */
  importRun(run: ImportedRun): Promise<RunRecord>;
  /**
   * Insert several runs in one commit (concurrent submits grouped by RunIntake): each entry is the
   * stored run, or `undefined` when its tenant already has a run with its idempotency key (the
   * first of a batch wins). Throws when the statement fails, for all of them. Optional: a store
   * without it gets one `createRun` per run.
   */
  createRuns?(runs: readonly NewRun[]): Promise<Array<RunRecord | undefined>>;
  /** The tenant's run submitted with this idempotency key, and the hash of that request. */
  findRunByIdempotencyKey(tenant: string, key: string): Promise<{ run: RunRecord; requestHash: string | null } | undefined>;
  /** How many of the tenant's runs have one of these statuses (the gateway's cap on active runs). */
  countRuns(tenant: string, statuses: readonly RunStatus[]): Promise<number>;
  getRun(id: string): Promise<RunRecord | undefined>;
  listRuns(q: ListRunsQuery): Promise<{ runs: RunRecord[]; next: string | null }>;
  /**
   * Append events and apply a run patch in one transaction. Events already stored (same id) are
   * skipped, so a retried commit is harmless; the run's `lastSeq` follows the highest seq written.
   * With `owner`, nothing is written unless that node still holds the run (AO_LEASE_LOST): the
   * fence that keeps a node whose lease lapsed from writing beside the one that took over.
   */
  commit(batch: CommitBatch): Promise<void>;
  /** Events with `after` < seq <= `upTo`, in seq order, at most `limit`. */
  listEvents(runId: string, q: { after?: number; upTo?: number; limit: number }): Promise<Envelope[]>;

  /**
   * Take over runs no live node hosts: `pending` or `running` runs whose lease has expired (or that
   * have none), plus, with `reclaimOwn`, those `owner` held before a restart, plus waiting runs
   * nobody holds whose `wakeAt` has passed (a wait timed out). Rows are locked with
   * FOR UPDATE SKIP LOCKED, so two nodes never claim the same run. Returns the claimed runs.
   */
  claimRuns(q: { owner: string; leaseMs: number; limit: number; reclaimOwn: boolean; exclude: string[] }): Promise<RunRecord[]>;
  /**
   * Take one run handed out by the cluster's work queue: it must be active and either held by
   * `from` (the queue's placeholder owner), by no one, or under an expired lease. Returns the run,
   * or undefined when another node has it.
   */
  claimRun(q: { id: string; owner: string; leaseMs: number; from: string }): Promise<RunRecord | undefined>;
  /**
   * Extend the leases `owner` holds on `runIds`; returns the ids whose cancel was requested and
   * those with signals waiting to be taken.
   */
  renewLeases(owner: string, runIds: string[], leaseMs: number): Promise<{ renewed: string[]; cancelRequested: string[]; signalled: string[] }>;
  /**
   * Keep an answer to a wait. At most one per wait id (and one pending early answer per node):
   * a repeat is not stored, and the first is returned with `duplicate: true`.
   */
  addSignal(sig: { id: string; runId: string; node: string; waitId: string | null; payload: unknown }): Promise<{ signal: SignalRecord; duplicate: boolean }>;
  /** Signals not yet taken by the run, oldest first. */
  pendingSignals(runId: string): Promise<SignalRecord[]>;
  /** The signal that answered (or will answer) a wait. */
  getSignal(runId: string, waitId: string): Promise<SignalRecord | undefined>;
  /**
   * Wake a passivated run (status `waiting` with waits, no owner): it becomes `running`, held by
   * `owner`. Exactly one caller wins; undefined for the others (or a run that is not asleep).
   */
  wakeRun(q: { id: string; owner: string; leaseMs: number }): Promise<RunRecord | undefined>;
  /** Give up leases (graceful shutdown): another node may claim the runs at once. */
  releaseLeases(owner: string, runIds: string[]): Promise<void>;
  /** Envelopes of a run whose type starts with `prefix` (e.g. `budget.`), in seq order. */
  listEventsOfType(runId: string, prefix: string): Promise<Envelope[]>;
  /** Envelopes of a run by id (e.g. the start messages a checkpoint names). */
  getEvents(runId: string, ids: string[]): Promise<Envelope[]>;
  /** Flag a run for cancellation (the hosting node acts on it). False if it is not active. */
  requestCancel(runId: string): Promise<boolean>;

  latestCheckpoint(runId: string): Promise<CheckpointRecord | undefined>;
  /**
   * What resuming many runs at once needs, in one read each (a node restarting after a crash
   * resumes hundreds): the latest checkpoint of each run, and each run's first envelope.
   */
  latestCheckpoints(runIds: string[]): Promise<Map<string, CheckpointRecord>>;
  firstEvents(runIds: string[]): Promise<Map<string, Envelope>>;
  /**
   * Envelopes by run and id (of many runs at once). `upTo`, when every ref of a run gives it: its
   * envelope's seq is at most that (a live child's start message, at most its checkpoint's seq),
   * so only that part of the run's log is searched (ids are not indexed: without it the search
   * reads every row of the run, which grows with a long conversation). An envelope not found
   * there is not found.
   */
  eventsById(refs: ReadonlyArray<{ runId: string; id: string; upTo?: number }>): Promise<Envelope[]>;
  /**
   * Each run's envelopes with seq > `after`, in seq order, by run. `bases`: conversations a resume
   * already read (`run#actor` -> the messages of the actor's last request at or before `after`),
   * from which requests stored as deltas are rebuilt without reading earlier rows.
   */
  eventsAfter(
    ranges: ReadonlyArray<{ runId: string; after: number }>,
    o?: { bases?: ReadonlyMap<string, readonly unknown[]> },
  ): Promise<Map<string, Envelope[]>>;
  /**
   * The turn records (see `turns.ts`) of each run's model requests with seq >= `from`, in seq
   * order, whole (a replay's records that name its original's are put back: see
   * `shared-turns.ts`): what a resume reads to restore agents mid-conversation. Optional: without
   * it, agents run again from their start.
   */
  turnsSince?(ranges: ReadonlyArray<{ runId: string; from: number }>): Promise<Map<string, StoredTurn[]>>;
  /**
   * The last request of each of these actors of a run, as a resume read it from their records,
   * so the next requests are stored as what they add to it. A hint: without it they are stored
   * whole once.
   */
  primeRequests?(runId: string, last: ReadonlyMap<string, { seq: number; messages: readonly unknown[] }>): void;
  getCheckpoint(runId: string, step: number): Promise<CheckpointRecord | undefined>;
  listCheckpoints(runId: string): Promise<CheckpointSummary[]>;

  /** Store a new API key (its hash only). */
  createApiKey(key: Omit<ApiKeyRecord, 'createdAt' | 'revokedAt'>): Promise<ApiKeyRecord>;
  getApiKey(id: string): Promise<ApiKeyRecord | undefined>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  /** Revoke a key (kept, with the time); false if there is no such unrevoked key. */
  revokeApiKey(id: string): Promise<boolean>;
  /** Whether any unrevoked key exists (then every route but /health needs one). */
  hasApiKeys(): Promise<boolean>;

  /**
   * Store sealed secrets (see `SecretVault`). A handle written again replaces the row: a call
   * repeated after a crash, before its result was journaled, may have produced a new value.
   */
  putSecrets(rows: SecretRecord[]): Promise<void>;
  /** The sealed secrets of these runs with these handles (any order). */
  getSecrets(runIds: string[], handles: string[]): Promise<SecretRecord[]>;

  /**
   * Take a runtime node id for a process, in one statement: it is taken when no one holds it, when
   * its holder's last beat is older than the holder's `staleMs`, when `replacing` names the
   * holder's instance (the caller proved that process gone; compare-and-set, so two callers that
   * proved it cannot both win), or when the caller holds it already. Otherwise the holder is
   * returned (undefined if it let go meanwhile: ask again). Holders silent for a day are deleted.
   */
  takeNodeId(claim: NodeIdClaim & { replacing?: string }): Promise<{ taken: true } | { taken: false; holder: NodeIdHolder | undefined }>;
  /** The holder's beat: false when `instance` no longer holds `id` (another process took it). */
  beatNodeId(id: string, instance: string): Promise<boolean>;
  /** Let go of `id` (graceful shutdown), if `instance` still holds it. */
  releaseNodeId(id: string, instance: string): Promise<void>;
  /** Who holds `id` now, if anyone. */
  nodeIdHolder(id: string): Promise<NodeIdHolder | undefined>;

  /** Apply a graph's retention policy to its finished runs; returns what was deleted. */
  sweep(graph: string, policy: Retention): Promise<{ runs: number; checkpoints: number }>;
  close(): Promise<void>;
}
