import { z } from 'zod';

export const RUN_STATUSES = ['pending', 'running', 'waiting', 'succeeded', 'failed', 'budget_exceeded', 'cancelled'] as const;
export const RunStatusSchema = z.enum(RUN_STATUSES);
export type RunStatus = z.infer<typeof RunStatusSchema>;
export const TERMINAL_STATUSES: ReadonlySet<RunStatus> = new Set(['succeeded', 'failed', 'budget_exceeded', 'cancelled']);

export const NODE_STATUSES = ['pending', 'running', 'retrying', 'succeeded', 'failed', 'skipped'] as const;
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
  createdAt: z.string(),
  updatedAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
});
export type RunRecord = z.infer<typeof RunRecordSchema>;

export type NewRun = Pick<RunRecord, 'id' | 'graph' | 'graphVersion' | 'input' | 'budget' | 'nodes' | 'traceId' | 'owner'> & {
  /** The owner's lease, taken in the same insert: no other claim can see the new run as free. */
  leaseMs: number;
};

export type RunPatch = Partial<
  Pick<RunRecord, 'status' | 'output' | 'error' | 'usage' | 'nodes' | 'startedAt' | 'finishedAt' | 'owner' | 'graphVersion'>
> & {
  /** Clear the lease (the run is parked or finished: no node hosts it). */
  releaseLease?: boolean;
};

/** A checkpoint as written with a step's events. */
export interface CheckpointWrite {
  step: number;
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

