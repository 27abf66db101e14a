import type { z } from 'zod';
import { ApprovalAnswerSchema, BudgetAnswerSchema, InterruptAnswerSchema } from '@ao/graphs';
import type { Budget, BudgetAnswer, GraphDef } from '@ao/graphs';
import type { ErrorInfo, SignalRecord, WaitInfo } from '@ao/runtime';
import { budgetMessage } from '../budget/ledger.js';
import type { SoftLimits } from '../budget/ledger.js';
import { fieldOf, numberField } from './fields.js';
import { waitResolved } from './scheduler.js';
import type { SchedulerState, Step, WaitOutcome } from './scheduler.js';

/** Pure helpers of the run supervisor's reducer: answers to waits, budget errors, chained steps. */

/** The schema a wait's answer must fit: the node's own, or the default of its kind. */
export function answerSchema(def: GraphDef<unknown>, node: string, kind: WaitInfo['kind']): z.ZodType {
  const n = def.node(node);
  if (kind === 'approval') return n?.approval?.schema ?? ApprovalAnswerSchema;
  if (kind === 'interrupt') return n?.interrupt?.schema ?? InterruptAnswerSchema;
  return BudgetAnswerSchema;
}

/** The limit a budget wait was opened for (its payload is the escalation's). */
const reachedLimit = (wait: WaitInfo): 'tokens' | 'tools' | 'usd' | undefined => {
  const limit = fieldOf(wait.payload, 'limit');
  return limit === 'tokens' || limit === 'tools' || limit === 'usd' ? limit : undefined;
};

/**
 * What a person's grant raises: the amounts given, and the limit that was reached by its own soft
 * size if the grant names no amount for it (a grant that left it where it was would be asked again).
 * `grant` is a `grant` answer (a `BudgetAnswer`; read field by field, as it came from the log).
 */
export function grantedRaise(grant: BudgetAnswer | unknown, wait: WaitInfo, budget: Budget): SoftLimits {
  const reached = reachedLimit(wait);
  const [tokens, tools, usd] = [numberField(grant, 'tokens'), numberField(grant, 'tools'), numberField(grant, 'usd')];
  const by: SoftLimits = { ...(tokens ? { tokens } : {}), ...(tools ? { tools } : {}), ...(usd ? { usd } : {}) };
  if (reached && by[reached] === undefined) by[reached] = budget.soft?.[reached] ?? 0;
  return by;
}

/** The error a budget stop ends the run with. */
export function budgetError(p: {
  limit: string;
  scope: string;
  value: number;
  used: number;
  reserved?: number | undefined;
  inFlight?: number | undefined;
  asked?: number | undefined;
  actor: string;
}): ErrorInfo {
  const { limit, scope, value, used, actor } = p;
  const extra = {
    ...(p.reserved !== undefined ? { reserved: p.reserved } : {}),
    ...(p.inFlight !== undefined ? { inFlight: p.inFlight } : {}),
    ...(p.asked !== undefined ? { asked: p.asked } : {}),
  };
  return {
    code: 'AO_BUDGET_EXCEEDED',
    message: `${budgetMessage({ limit, scope, value, used, ...extra })} (at ${actor})`,
    details: { limit, scope, value, used, ...extra, actor },
  };
}

/** The run's wall clock ran out at `now` (epoch ms), given its deadline. */
export function wallClockError(budget: Budget, deadline: number | undefined, now: number): ErrorInfo {
  const limit = budget.wallClockSec ?? 0;
  const used = (now - ((deadline ?? now) - limit * 1000)) / 1000;
  return budgetError({ limit: 'wallClockSec', scope: 'run', value: limit, used: Math.round(used * 1000) / 1000, actor: 'supervisor' });
}

/** How a wait that timed out ends, as its node says (a budget wait is denied). */
export function timeoutOutcome(def: GraphDef<unknown>, w: WaitInfo): WaitOutcome {
  const action =
    w.kind === 'approval'
      ? (def.node(w.node)?.approval?.onTimeout ?? 'reject')
      : w.kind === 'interrupt'
        ? (def.node(w.node)?.interrupt?.onTimeout ?? 'continue')
        : 'reject';
  return { kind: 'timeout', action };
}

/** Combine steps taken one after another into one (each starts from the state the previous left). */
export function chain(first: Step, next: (state: SchedulerState) => Step): Step {
  const second = next(first.state);
  return { state: second.state, decisions: [...first.decisions, ...second.decisions] };
}

/** The answers matched to open waits: the step they make, the signals consumed, and why some were dropped. */
export interface Answered {
  step: Step;
  consumed: string[];
  dropped: string[];
}

/**
 * Match answers to open waits: by wait id, or (an answer that came before its wait) by node, the
 * oldest first. Answers that fit no schema or answer a wait already closed are consumed and
 * dropped; early answers for a node with no open wait stay pending.
 */
export function answer(def: GraphDef<unknown>, sched: SchedulerState, signals: readonly SignalRecord[], now: string): Answered {
  let step: Step = { state: sched, decisions: [] };
  const consumed: string[] = [];
  const dropped: string[] = [];
  for (const sig of signals) {
    const open = Object.values(step.state.waits ?? {});
    // An early answer (no wait id) is for the node's approval or question, never a budget wait.
    const wait = sig.waitId !== null ? open.find((w) => w.id === sig.waitId) : open.find((w) => w.node === sig.node && w.kind !== 'budget');
    if (!wait) {
      if (sig.waitId !== null) consumed.push(sig.id); // its wait is closed: nothing to answer
      continue;
    }
    consumed.push(sig.id);
    const parsed = answerSchema(def, wait.node, wait.kind).safeParse(sig.payload);
    if (!parsed.success) {
      dropped.push(`dropped signal ${sig.id} for wait ${wait.id}: ${parsed.error.issues[0]?.message}`);
      continue;
    }
    step = chain(step, (st) => waitResolved(def, st, wait.id, { kind: 'signal', payload: parsed.data, signal: sig.id }, now));
  }
  return { step, consumed, dropped };
}
