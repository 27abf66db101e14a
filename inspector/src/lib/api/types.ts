/**
 * The gateway's HTTP and stream shapes, as the inspector reads them. Generated from the zod
 * schemas the gateway validates and serialises them with (`./generated.ts`, written by
 * `scripts/inspector-types.ts`; `scripts/inspector-types.test.ts` fails when it is stale), so they
 * cannot drift. Types only: the inspector imports no gateway code.
 */
import type * as G from './generated';

export type {
  ApiErrorBody,
  Budget,
  CheckpointSummary,
  DeltaFrame,
  Envelope,
  EnvelopePayloads,
  ErrorInfo,
  GraphDetail,
  GraphView,
  NodeState,
  ReplayInfo,
  RunDiffView,
  SignalAccepted,
  StreamFrame,
  TypedEnvelope,
  Usage,
  UsageView,
  WaitInfo,
} from './generated';

export type RunStatus = G.RunSummary['status'];
export const RUN_STATUSES = ['pending', 'running', 'waiting', 'succeeded', 'failed', 'budget_exceeded', 'cancelled'] as const satisfies readonly RunStatus[];
/** Compiles only while `RUN_STATUSES` lists every status the gateway sends. */
export const RUN_STATUSES_COMPLETE: [Exclude<RunStatus, (typeof RUN_STATUSES)[number]>] extends [never] ? true : never = true;
/** A run in one of these is over; a `waiting` one goes on once a person answers (or the error that parked it is dealt with). */
export const TERMINAL: ReadonlySet<RunStatus> = new Set(['succeeded', 'failed', 'budget_exceeded', 'cancelled']);

/** `waiting`: the node waits for a person's approval before it runs. */
export type NodeStatus = G.NodeState['status'];

/**
 * A run as the runs list keeps it: from `GET /runs`, then replaced by the status feed's `run`
 * frames, which add `lastSeq` (it orders two views of one run: higher is newer).
 */
export type RunSummary = G.RunSummary & { lastSeq?: number };

/**
 * `GET /runs/:id`. Its `budget` is the one the run was started with: the gateway declares it as
 * any object (a stored run keeps what it was given), the inspector reads it as a `Budget`.
 */
export type RunView = Omit<G.RunView, 'budget'> & { budget: G.Budget };

export type GraphNode = G.GraphView['nodes'][number];
export type GraphEdge = G.GraphView['edges'][number];

/**
 * A payload read field by field, as far as its fields go (nothing for what is not an object): the
 * inspector shows any log, an old writer's shapes too, so it reads payloads leniently rather than
 * claiming their type (`EnvelopePayloads` says what today's code writes).
 */
export function fieldsOf(payload: unknown): Readonly<Record<string, unknown>> {
  return isRecord(payload) ? payload : {};
}

const isRecord = (v: unknown): v is Readonly<Record<string, unknown>> => typeof v === 'object' && v !== null;
