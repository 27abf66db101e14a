import type { ErrorInfo, NodeState, WaitInfo } from '@ao/runtime';
import type { NodeOutput } from '@ao/graphs';

/** The run scheduler's vocabulary: its state, the decisions it makes, and the steps it returns (see ./scheduler.ts). */

export type EdgeState = 'unresolved' | 'taken' | 'not_taken';

export interface SchedulerState {
  nodes: Record<string, NodeState>;
  /** Back edges taken while their loop body was still busy: they loop once it is idle. */
  deferred: Array<{ from: string; to: string }>;
  /** By edge index; back edges stay 'unresolved' (they act, they do not gate). */
  edges: EdgeState[];
  outputs: Record<string, NodeOutput>;
  finished: boolean;
  /** Open waits (approvals, questions, budget), by id. */
  waits?: Record<string, WaitInfo>;
  /**
   * Waits that ended, by id: never opened again. After a crash or a take-over, the actor that
   * asked runs again and may re-send its `wait.registered` (the log has it: it is delivered, not
   * written, again); when the answer was taken meanwhile, that late copy must not reopen the wait.
   */
  closedWaits?: string[];
  /** Approval answers by node (the latest iteration's): in node contexts and edge predicates. */
  approvals?: Record<string, unknown>;
}

/** How a wait ended: a person's answer, its timeout, or (an approval's own outcome) approved or not. */
export type WaitOutcome = { kind: 'signal'; payload: unknown; signal: string } | { kind: 'timeout'; action: 'approve' | 'reject' | 'fail' | 'continue' };

export type Decision =
  | { kind: 'start'; node: string; iteration: number; attempt: number; upstream: string[] }
  | { kind: 'skip'; node: string; reason: string }
  | { kind: 'loop'; from: string; to: string; iteration: number; reset: string[] }
  | { kind: 'retry'; node: string; attempt: number; delayMs: number; error: ErrorInfo }
  /** A wait opened (an approval before a node): tell the person, arm its timeout. */
  | { kind: 'wait'; wait: WaitInfo }
  /** A wait ended: record how; a question's answer goes to the actor that asked. */
  | { kind: 'resolved'; wait: WaitInfo; outcome: WaitOutcome; approved?: boolean }
  | {
      kind: 'finish';
      status: 'succeeded' | 'failed' | 'cancelled' | 'budget_exceeded';
      output?: Record<string, NodeOutput>;
      error?: ErrorInfo;
      cancel: string[];
    };

export interface Step {
  state: SchedulerState;
  decisions: Decision[];
}

/** Where a completion comes from: a completion of an earlier attempt or iteration is stale. */
export interface At {
  iteration: number;
  attempt: number;
}
