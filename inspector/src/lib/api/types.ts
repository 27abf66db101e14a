/**
 * The gateway's HTTP and stream shapes, as the inspector reads them. They mirror the zod schemas
 * of `gateway/src/http/views.ts` and `gateway/src/stream/frames.ts` (the inspector talks HTTP only
 * and imports no gateway code); the browser tests run them against a real gateway.
 */

export const RUN_STATUSES = ['pending', 'running', 'waiting', 'succeeded', 'failed', 'budget_exceeded', 'cancelled'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
/** A run in one of these is over; a `waiting` one goes on once a person answers (or the error that parked it is dealt with). */
export const TERMINAL: ReadonlySet<RunStatus> = new Set(['succeeded', 'failed', 'budget_exceeded', 'cancelled']);

/** `waiting`: the node waits for a person's approval before it runs. */
export type NodeStatus = 'pending' | 'waiting' | 'running' | 'retrying' | 'succeeded' | 'failed' | 'skipped';

/** What a run waits for a person to answer (`POST /runs/:id/signal`). */
export interface WaitInfo {
  id: string;
  node: string;
  kind: 'approval' | 'interrupt' | 'budget';
  /** What the person is asked. */
  prompt: string;
  /** What comes with the question (an agent's payload, the budget limit reached). */
  payload?: unknown;
  /** JSON Schema of a valid answer. */
  schema: unknown;
  since: string;
  /** When it times out (epoch ms), if it does. */
  timeoutAt?: number;
  countWallClock: boolean;
  /** The actor that waits for the answer (questions asked mid-node). */
  actor?: string;
}

/** `POST /runs/:id/signal` answered 202. */
export interface SignalAccepted {
  id: string;
  status: RunStatus;
  signal: string;
  /** The wait it answered (null: it came before the wait opened). */
  wait: string | null;
  /** The same wait was answered before: nothing changed. */
  duplicate: boolean;
}

export interface Usage {
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  llmCalls: number;
  toolCalls: number;
  perTool: Record<string, number>;
}

export interface ErrorInfo {
  code: string;
  message: string;
  node?: string;
  details?: Record<string, unknown>;
}

export interface RunSummary {
  id: string;
  graph: string;
  graphVersion: string;
  status: RunStatus;
  usage: Usage;
  error: ErrorInfo | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** The run this one replays or forks, if any. */
  replayOf?: string | null;
  /** On stream frames (and run views): orders two views of one run. */
  lastSeq?: number;
  /** What the run waits for a person to answer; empty unless it waits (a `waiting` run with none is parked on an error). */
  waits?: WaitInfo[];
}

export interface Budget {
  tokens?: number;
  tools?: number;
  usd?: number;
  wallClockSec?: number;
  perTool?: Record<string, number>;
  /** Soft limits: a call that would pass one waits for a person to grant more. */
  soft?: { tokens?: number; tools?: number; usd?: number };
}

export interface NodeState {
  status: NodeStatus;
  iteration: number;
  attempt: number;
  startedAt?: string;
  finishedAt?: string;
  error?: { code: string; message: string };
}

export interface ReplayInfo {
  of: string;
  fromStep: number;
  mode: 'live' | 'recorded' | 'lenient';
  /** Seq of the original's last event at `fromStep`. */
  baseSeq: number;
  overrides: unknown;
  divergence: unknown;
}

export interface RunView extends RunSummary {
  input: unknown;
  output: unknown;
  budget: Budget;
  nodes: Record<string, NodeState>;
  traceId: string | null;
  lastSeq: number;
  updatedAt: string;
  replay?: ReplayInfo | null;
}

export interface GraphNode {
  id: string;
  agent: string;
  llm: string;
  tools: string[];
  concurrency?: number;
  instructions?: string;
  maxIterations?: number;
  /** A person approves the node before it runs (`schema`: JSON Schema of the answer). */
  approval?: WaitOptions & { prompt: string };
  /** The node's agent may ask a person (`ask_human`). */
  interrupt?: WaitOptions & { prompt?: string };
}
export interface WaitOptions {
  schema: unknown;
  timeoutSec?: number;
  onTimeout: string;
  countWallClock: boolean;
}
export interface GraphEdge {
  from: string;
  to: string;
  conditional: boolean;
  back: boolean;
}
export interface GraphView {
  name: string;
  version: string;
  entries: string[];
  nodes: GraphNode[];
  edges: GraphEdge[];
  budget: Budget;
  hasInputSchema: boolean;
}
/** GET /graphs/:name: a graph with the JSON Schema of its run input (null: any input). */
export interface GraphDetail extends GraphView {
  inputSchema: Record<string, unknown> | null;
}

export interface Envelope {
  id: string;
  runId: string;
  seq: number;
  from: string;
  to: string;
  type: string;
  payload: unknown;
  causationId: string | null;
  trace: { traceparent: string; tracestate?: string } | null;
  time: string;
}

export interface CheckpointSummary {
  runId: string;
  step: number;
  seq: number;
  node: string | null;
  graphVersion: string;
  sizeBytes: number;
  createdAt: string;
}

export interface ApiErrorBody {
  error: { code: string; message: string; field?: string; candidates?: string[] };
}

export type StreamFrame =
  | { kind: 'envelope'; envelope: Envelope }
  | { kind: 'end'; runId: string; status: RunStatus; lastSeq: number }
  | { kind: 'behind'; lastSeq: number | null; error: { code: string; message: string } }
  | { kind: 'ready' }
  | { kind: 'run'; cause: string; run: RunSummary & { lastSeq: number; updatedAt: string } }
  | { kind: 'error'; error: { code: string; message: string } }
  | DeltaFrame;

/** A piece of an LLM answer being written (ephemeral: no seq; the `llm.response` envelope holds the whole answer). */
export interface DeltaFrame {
  kind: 'delta';
  runId: string;
  key: string;
  actor: string;
  attempt: number;
  index: number;
  text: string;
}
