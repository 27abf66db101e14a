import type { AgentKind, Budget, GraphDef } from '@ao/graphs';
import type { ActorPath, Divergence, Envelope, ErrorInfo, RunPatch, SignalRecord, Typed, Usage, WaitInfo } from '@ao/runtime';
import type { Ledger } from '../budget/ledger.js';
import type { Payload } from '../messages.js';
import type { CheckpointState } from './checkpoint.js';
import type { RecordedReads, RecordedWake } from './recorded-waits.js';
import type { SchedulerState } from './scheduler.js';

/**
 * The run supervisor as a reducer: `reduce(state, message, ctx)` returns the next state and the
 * effects the actor shell performs, in order (see ./reducer.ts). This file names its three
 * vocabularies: the state, the messages it handles, the effects it asks for.
 */

/** A child actor running one node execution: its actor name and path (the shell holds its ref). */
export interface ChildInfo {
  node: string;
  name: string;
  path: ActorPath;
}

/** The supervisor's state: plain data (the refs and timers it stands for live in the shell). */
export interface SupervisorState {
  sched: SchedulerState;
  step: number;
  /** The wall-clock deadline (epoch ms), when the budget has one. */
  deadline?: number;
  /** Live children, in the order they were spawned. */
  children: ChildInfo[];
  /** Children to re-spawn when restored from a checkpoint (until the resume message comes). */
  restore?: CheckpointState['live'];
  /** When the run was passivated (epoch ms), until it resumes. */
  pausedAt?: number;
  /** The run was passivated: this supervisor is done. */
  asleep?: boolean;
  /** The `node.completed` envelope each node's output came from (its id): checkpoints refer to it instead of holding the output again. */
  outputAt?: Record<string, string>;
}

/** How a wake moved the wall clock: how long the run slept, and whether that time was paused. */
export interface Wake {
  pausedMs: number;
  paused: boolean;
}

/** What the supervisor handles: envelopes of its run (parsed), its timers, and the engine's calls. */
export type SupervisorMessage =
  | { type: 'run.started'; id: string; time: string }
  | { type: 'wait.registered'; id: string; wait: WaitInfo }
  | { type: 'budget.escalated'; id: string; payload: Payload<'budget.escalated'> }
  | { type: 'budget.exceeded'; id: string; payload: Payload<'budget.exceeded'> }
  | { type: 'node.completed'; id: string; payload: Payload<'node.completed'> }
  | { type: 'node.failed'; id: string; payload: Payload<'node.failed'> }
  /** A retry's backoff timer fired. */
  | { type: 'retry'; node: string }
  | { type: 'cancel'; reason: string }
  /** The wall-clock deadline's timer fired. */
  | { type: 'deadline' }
  /** A poke: answers came for the run's waits (what is pending is read: see `Need`). */
  | { type: 'signals' }
  | { type: 'waitTimeout'; wait: string }
  /** A strict replay diverged from its original: the run ends failed. */
  | { type: 'diverged'; divergence: Divergence }
  /** Restored from a checkpoint: the start messages of the live children. */
  | { type: 'restore'; starts: Envelope[] }
  /** The second half of `restore` (after the answers that woke it are in): re-spawn and re-arm. */
  | { type: 'restoreChildren'; starts: Envelope[] }
  /** A step committed and the run goes on: a recorded replay may make its original's next step at once. */
  | { type: 'committed'; woke?: RecordedWake };

/** A timer's message to the supervisor itself. */
export type TimerMessage = { local: 'retry'; node: string } | { local: 'waitTimeout'; wait: string };

/** An envelope the supervisor writes (from itself): the shell makes the draft with the step's trace. */
export type Note = { to: ActorPath; causationId: string | null; key: string } & Typed;

/** One commit: envelopes, the run row's patch, and the supervisor's checkpoint (the shell adds the ledger). */
export interface Commit {
  notes: Note[];
  patch: RunPatch;
  checkpoint: { step: number; node: string | null; state: Omit<CheckpointState, 'usage'> };
  /**
   * A step of the graph: traced in a span (`decisions` its attribute), staged, strict unless it
   * ends the run. A strict replay's divergence is handled as a `diverged` message from `rollback`.
   * Absent for a parked run's commit (written at once, under the run's trace).
   */
  step?: { decisions: string; finished: boolean; rollback: SupervisorState };
}

/** What the supervisor asks the shell to do, in order. */
export type Effect =
  | { kind: 'startBudget'; restoring: boolean }
  | { kind: 'stopBudget' }
  | { kind: 'spawn'; node: string; name: string; agent: AgentKind }
  /** Stop a child; `unregister` false when the whole run passivates (its paths are dropped with it). */
  | { kind: 'stopChild'; node: string; unregister: boolean }
  | { kind: 'tell'; node: string; envelope: Envelope }
  /** Arm the wall-clock deadline (disarming the previous one); `at` undefined only disarms. */
  | { kind: 'armDeadline'; at: number | undefined }
  /** A timer `delayMs` from when it is armed. */
  | { kind: 'armAfter'; timer: TimerMessage; delayMs: number }
  /** A timer at epoch ms `at`; `capped`: not armed beyond what a timer can hold (the wake-up at `wakeAt` covers it). */
  | { kind: 'armAt'; timer: TimerMessage; at: number; capped: boolean }
  | { kind: 'clearTimers' }
  | { kind: 'commit'; commit: Commit }
  /** The run's span ends (telemetry). */
  | { kind: 'runEnded'; status: string; error?: ErrorInfo; usage: Usage }
  | { kind: 'finished' }
  | { kind: 'passivated' }
  | { kind: 'log'; message: string };

/** A read the reducer needs before it can decide (the shell reads, then reduces the same message again). */
export type Need = { kind: 'signals' } | { kind: 'fork'; step: number; budget: Record<string, unknown>; key: string };

/** What is read for a reduction: values, and lookups into what does not change under it. */
export interface ReduceContext {
  /** The clock, read once (epoch ms). */
  now: number;
  def: GraphDef<unknown>;
  input: unknown;
  budget: Budget;
  /** The supervisor's own path (its children's are under it). */
  self: ActorPath;
  /** The run is a replay or fork (its outputs from before its step are its original's). */
  replay: boolean;
  /** The budget ledger as of the last commit. */
  ledger: Ledger;
  /** The id of the envelope with a dedupe key (a hash of the run id and the key). */
  idOf(key: string): string;
  /** What a recorded replay serves from its original's log. */
  recorded: RecordedReads;
  /** The pending answers read so far for this message, in order (see `Need`). */
  signalReads: ReadonlyArray<readonly SignalRecord[]>;
  /** The ids of the forks made so far for this message, in order (see `Need`). */
  forks: readonly string[];
}

export type Reduction = { state: SupervisorState; effects: Effect[]; then: SupervisorMessage[] } | { need: Need };
