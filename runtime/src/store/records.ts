import { z } from 'zod';

export const RUN_STATUSES = ['pending', 'running', 'waiting', 'succeeded', 'failed', 'budget_exceeded', 'cancelled'] as const;
export const RunStatusSchema = z.enum(RUN_STATUSES);
export type RunStatus = z.infer<typeof RunStatusSchema>;
export const TERMINAL_STATUSES: ReadonlySet<RunStatus> = new Set(['succeeded', 'failed', 'budget_exceeded', 'cancelled']);

/** `waiting`: the node waits for a person's approval before it runs. */
export const NODE_STATUSES = ['pending', 'waiting', 'running', 'retrying', 'succeeded', 'failed', 'skipped'] as const;
export const NodeStateSchema = z.object({
  status: z.enum(NODE_STATUSES),
  /** Executions started so far (loops run a node more than once). */
  iteration: z.number().int().min(0),
  /** Attempt of the current iteration, from 1. */
  attempt: z.number().int().min(0),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  /** When a node waiting to retry starts its next attempt (epoch ms): survives a restart. */
  retryAt: z.number().optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});
export type NodeState = z.infer<typeof NodeStateSchema>;

export const UsageSchema = z.object({
  inputTokens: z.number().int().min(0),
  outputTokens: z.number().int().min(0),
  totalTokens: z.number().int().min(0),
  llmCalls: z.number().int().min(0),
  toolCalls: z.number().int().min(0),
  perTool: z.record(z.string(), z.number().int().min(0)),
});
export type Usage = z.infer<typeof UsageSchema>;
export const emptyUsage = (): Usage => ({ inputTokens: 0, outputTokens: 0, totalTokens: 0, llmCalls: 0, toolCalls: 0, perTool: {} });

export function addUsage(a: Usage, b: Partial<Usage>): Usage {
  const perTool = { ...a.perTool };
  for (const [k, v] of Object.entries(b.perTool ?? {})) perTool[k] = (perTool[k] ?? 0) + v;
  return {
    inputTokens: a.inputTokens + (b.inputTokens ?? 0),
    outputTokens: a.outputTokens + (b.outputTokens ?? 0),
    totalTokens: a.totalTokens + (b.totalTokens ?? 0),
    llmCalls: a.llmCalls + (b.llmCalls ?? 0),
    toolCalls: a.toolCalls + (b.toolCalls ?? 0),
    perTool,
  };
}

export const ErrorInfoSchema = z.object({
  code: z.string(),
  message: z.string(),
  node: z.string().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
});
export type ErrorInfo = z.infer<typeof ErrorInfoSchema>;

export const REPLAY_MODES = ['live', 'recorded', 'lenient'] as const;
export const ReplayModeSchema = z.enum(REPLAY_MODES);
export type ReplayMode = z.infer<typeof ReplayModeSchema>;

/** What a fork changes from its step on (recorded exactly, in the run row and its first event). */
export const ReplayOverridesSchema = z.strictObject({
  /** A new run input, seen by every node that starts after the step. */
  input: z.unknown().optional(),
  /** Per node: new instructions and/or tool list (nodes that start after the step). */
  nodes: z
    .record(
      z.string().min(1).max(128),
      z.strictObject({ instructions: z.string().max(100_000).optional(), tools: z.array(z.string().min(1).max(128)).max(64).optional() }),
    )
    .optional(),
  /** Budget limits replacing the original's, limit by limit. */
  budget: z.record(z.string(), z.unknown()).optional(),
  /** Unsafe tools this replay may call live (by name); `true` for all. Never implied. */
  allowUnsafe: z.union([z.literal(true), z.array(z.string().min(1).max(128)).max(64)]).optional(),
});
export type ReplayOverrides = z.infer<typeof ReplayOverridesSchema>;

/** A compact view of an envelope in a divergence report (no ids or times: they always differ). */
export const EnvelopeGistSchema = z.object({ seq: z.number().int(), type: z.string(), from: z.string(), to: z.string(), payload: z.unknown() });
export type EnvelopeGist = z.infer<typeof EnvelopeGistSchema>;

/** The first place a recorded replay did something else than the original. */
export const DivergenceSchema = z.object({
  /** The replay's step (its supervisor's checkpoint step) when it diverged. */
  step: z.number().int(),
  /** The actor whose decision differs. */
  actor: z.string(),
  /** What the original did there (null: the original emitted nothing more from this actor). */
  expected: EnvelopeGistSchema.nullable(),
  /** What the replay did (null: the replay ended without emitting it). */
  actual: EnvelopeGistSchema.nullable(),
  /** Human-readable lines: changed fields, prompt text as a line diff, changed arguments or model. */
  diff: z.array(z.string()),
});
export type Divergence = z.infer<typeof DivergenceSchema>;

export const ReplayInfoSchema = z.object({
  /** The run replayed (the original). */
  of: z.string(),
  fromStep: z.number().int().min(0),
  mode: ReplayModeSchema,
  overrides: ReplayOverridesSchema.nullable(),
  /** Seq of the original's last event at `fromStep`: the replay inherits the log up to it. */
  baseSeq: z.number().int().min(0),
  /** The graph version the original ran (the replay runs the version registered now). */
  originalVersion: z.string(),
  divergence: DivergenceSchema.nullable(),
});
export type ReplayInfo = z.infer<typeof ReplayInfoSchema>;

export const WAIT_KINDS = ['approval', 'interrupt', 'budget'] as const;

/**
 * Something a run waits for a person to answer: an approval before a node, a question an agent
 * asked mid-node, or more budget. Its id is stable (derived from the node, iteration and effect),
 * so an answer names exactly one wait and a repeated answer is a no-op.
 */
export const WaitInfoSchema = z.object({
  id: z.string().min(1),
  node: z.string(),
  kind: z.enum(WAIT_KINDS),
  /** What the person is asked. */
  prompt: z.string(),
  /** What comes with the question (an agent's payload, the budget limit reached). */
  payload: z.unknown().optional(),
  /** JSON Schema of a valid answer. */
  schema: z.unknown(),
  since: z.string(),
  /** When it times out (epoch ms), if it does. */
  timeoutAt: z.number().optional(),
  /** Whether the time waited counts against the run's wall-clock budget. */
  countWallClock: z.boolean(),
  /** The actor that waits for the answer (questions asked mid-node). */
  actor: z.string().optional(),
});
export type WaitInfo = z.infer<typeof WaitInfoSchema>;

/** An answer to a wait (POST /runs/:id/signal): kept until the run takes it, even if it came before the wait. */
export interface SignalRecord {
  id: string;
  runId: string;
  node: string;
  /** The wait it answers; null when it came before the node's wait was registered (the next wait of the node takes it). */
  waitId: string | null;
  payload: unknown;
  createdAt: string;
  consumedAt: string | null;
}

/** A run as stored; rows are parsed with this schema when read (a bad row is AO_STORE_CORRUPT). */
export const RunRecordSchema = z.object({
  id: z.string(),
  graph: z.string(),
  graphVersion: z.string(),
  status: RunStatusSchema,
  input: z.unknown(),
  output: z.unknown().nullable(),
  error: ErrorInfoSchema.nullable(),
  budget: z.record(z.string(), z.unknown()),
  usage: UsageSchema,
  nodes: z.record(z.string(), NodeStateSchema),
  traceId: z.string().nullable(),
  owner: z.string().nullable(),
  leaseExpiresAt: z.string().nullable(),
  cancelRequested: z.boolean(),
  lastSeq: z.number().int().min(0),
  replay: ReplayInfoSchema.nullable(),
  /** Whose run it is (the API key's tenant; `default` without keys). A replay inherits its original's. */
  tenant: z.string(),
  /** The `Idempotency-Key` it was submitted with, if any. */
  idempotencyKey: z.string().nullable(),
  /** What the run waits for a person to answer (empty unless it waits). */
  waits: z.array(WaitInfoSchema),
  /** When a waiting run must be resumed without an answer (its earliest wait timeout). */
  wakeAt: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
});
export type RunRecord = z.infer<typeof RunRecordSchema>;

export type NewRun = Pick<RunRecord, 'id' | 'graph' | 'graphVersion' | 'input' | 'budget' | 'nodes' | 'traceId' | 'owner'> & {
  replay?: ReplayInfo;
  /** Default: a replay's original's tenant, else `default`. */
  tenant?: string;
  /** Unique per tenant: a second run with the same key is refused with AO_IDEMPOTENCY_KEY_REUSED. */
  idempotencyKey?: string;
  /** Hash of the request that carried the key (compared when the key comes again). */
  requestHash?: string;
  /** The owner's lease, taken in the same insert: no other claim can see the new run as free. */
  leaseMs: number;
};

export type RunPatch = Partial<
  Pick<RunRecord, 'status' | 'output' | 'error' | 'usage' | 'nodes' | 'startedAt' | 'finishedAt' | 'owner' | 'graphVersion' | 'replay' | 'waits' | 'wakeAt'>
> & {
  /** Clear the lease (the run is parked or finished: no node hosts it). */
  releaseLease?: boolean;
  /** Signals taken by this commit (their waits resolved): marked consumed in the same transaction. */
  consumeSignals?: string[];
};

/** A checkpoint as written with a step's events. */
export interface CheckpointWrite {
  step: number;
  /**
   * The seq of the last event this checkpoint reflects. Absent: the run's last seq after the
   * commit. A commit that carries several steps (staged, see RunJournal) names each step's own.
   */
  seq?: number;
  node: string | null;
  graphVersion: string;
  state: unknown;
}

export const CheckpointRecordSchema = z.object({
  runId: z.string(),
  step: z.number().int(),
  seq: z.number().int(),
  node: z.string().nullable(),
  graphVersion: z.string(),
  state: z.unknown(),
  sizeBytes: z.number().int(),
  createdAt: z.string(),
});
export type CheckpointRecord = z.infer<typeof CheckpointRecordSchema>;
export type CheckpointSummary = Omit<CheckpointRecord, 'state'>;

/** An API key as stored: never the key itself, only its hash. */
export interface ApiKeyRecord {
  id: string;
  tenant: string;
  name: string | null;
  hash: string;
  readOnly: boolean;
  createdAt: string;
  revokedAt: string | null;
}

/** One sealed secret: what the vault stores for a handle of a run (never the plaintext). */
export interface SecretRecord {
  runId: string;
  handle: string;
  /** Which key sealed it (a fingerprint, not the key). */
  keyId: string;
  iv: string;
  data: string;
}

/** The process that holds a runtime node id (table `node_ids`; see `NodeIdentity`). */
export interface NodeIdHolder {
  id: string;
  /** A random token of the holding process. */
  instance: string;
  host: string;
  /** The holder's pid namespace: its pid means that process only on a host with the same one. */
  pidNs: string;
  pid: number;
  /** After how long without a beat the holder counts as dead (its lease). */
  staleMs: number;
  startedAt: string;
  heartbeatAt: string;
  /** How long ago its last beat was, by the database's clock (no clock skew between hosts). */
  heartbeatAgeMs: number;
}

/** A process asking for a node id: what it will hold, before any beat. */
export type NodeIdClaim = Pick<NodeIdHolder, 'id' | 'instance' | 'host' | 'pidNs' | 'pid' | 'staleMs'>;
