import { BudgetAnswerSchema, schemaJson } from '@ao/graphs';
import type { Divergence, Envelope, ErrorInfo, WaitInfo } from '@ao/runtime';
import { BUDGET_PATH } from '../effects/effects.js';
import { answer, budgetError, chain, timeoutOutcome, wallClockError } from './answers.js';
import type { CheckpointState } from './checkpoint.js';
import type { RecordedHostedStep, RecordedWake } from './recorded-waits.js';
import { begin, initialState, nodeFailed, nodeSucceeded, retryDue, stopRun, waitOpened, waitResolved } from './scheduler.js';
import type { Step } from './scheduler.js';
import { applyStep, armWait, NeedRead, snapshotState, spawnChild, stopChild, Turn } from './step.js';
import type { ReduceContext, Reduction, SupervisorMessage, SupervisorState, Wake } from './reducer-types.js';

/**
 * The run supervisor's decisions as one pure function: `reduce(state, message, ctx)` returns the
 * next state and the effects to perform in order (spawn and stop children, arm timers, commit a
 * step, end or passivate the run), and the messages to reduce next (a restore's second half, a
 * recorded replay's next step). It reads only `ctx`: the clock's time, the ledger, ids, the
 * recording. When it needs a read it was not given (the pending answers, a fork's id) it returns
 * `{ need }`; the shell reads, adds the result to `ctx`, and reduces the same message again.
 */
export function reduce(state: SupervisorState, msg: SupervisorMessage, ctx: ReduceContext): Reduction {
  if (state.sched.finished || state.asleep) return { state, effects: [], then: [] };
  const turn = new Turn(ctx);
  try {
    const next = handle(turn, { ...state, children: [...state.children] }, msg);
    return { state: next, effects: turn.effects, then: turn.then };
  } catch (e) {
    if (e instanceof NeedRead) return { need: e.need };
    throw e;
  }
}

/** The state of a new run, or of one restored from a checkpoint. */
export function restoredState(ctx: Pick<ReduceContext, 'def' | 'replay'>, restored?: CheckpointState): SupervisorState {
  if (!restored) return { sched: initialState(ctx.def), step: 0, children: [] };
  // A replay's outputs from before its step came from its original's log, not its own.
  const outputAt =
    restored.$refs && !ctx.replay ? Object.fromEntries(restored.$refs.flatMap((r) => (outputRefNode(r) ? [[outputRefNode(r)!, r.id]] : []))) : undefined;
  return {
    sched: restored.sched,
    step: restored.step,
    children: [],
    restore: restored.live,
    ...(restored.deadline !== undefined ? { deadline: restored.deadline } : {}),
    ...(restored.pausedAt !== undefined ? { pausedAt: restored.pausedAt } : {}),
    ...(outputAt ? { outputAt } : {}),
  };
}

/** The node whose output a checkpoint reference puts back (see `CheckpointState.$refs`). */
const outputRefNode = (r: NonNullable<CheckpointState['$refs']>[number]): string | undefined =>
  r.path.length === 3 && r.path[0] === 'sched' && r.path[1] === 'outputs' && r.field.join('.') === 'output' ? r.path[2] : undefined;

function handle(turn: Turn, state: SupervisorState, msg: SupervisorMessage): SupervisorState {
  const { ctx } = turn;
  const now = turn.iso;
  switch (msg.type) {
    case 'retry':
      return applyStep(turn, state, retryDue(ctx.def, state.sched, msg.node, now), {
        node: msg.node,
        causeKey: `retry/${msg.node}/${state.sched.nodes[msg.node]?.attempt}`,
      });
    case 'cancel':
      return applyStep(turn, state, stopRun(state.sched, 'cancelled', { code: 'AO_RUN_CANCELLED', message: msg.reason }, now), { causeKey: 'cancel' });
    case 'deadline':
      return applyStep(turn, state, stopRun(state.sched, 'budget_exceeded', wallClockError(ctx.budget, state.deadline, ctx.now), now), {
        causeKey: 'deadline',
      });
    case 'signals': {
      // A poke: what is pending is read now (a snapshot sent earlier may hold answers already taken).
      const { step, consumed, dropped } = answer(ctx.def, state.sched, turn.signals(), now);
      for (const message of dropped) turn.emit({ kind: 'log', message });
      return applyStep(turn, state, step, { causeKey: 'signals', consumed });
    }
    case 'waitTimeout': {
      const wait = state.sched.waits?.[msg.wait];
      if (!wait) return state;
      return applyStep(turn, state, waitResolved(ctx.def, state.sched, wait.id, timeoutOutcome(ctx.def, wait), now), {
        node: wait.node,
        causeKey: `timeout/${wait.id}`,
      });
    }
    case 'diverged':
      return endDiverged(turn, state, msg.divergence);
    case 'restore':
      return restore(turn, state, msg.starts);
    case 'restoreChildren':
      return restoreChildren(turn, state, msg.starts);
    case 'committed':
      return committed(turn, state, msg.woke);
    default:
      return handleEnvelope(turn, state, msg);
  }
}

/** The envelopes the supervisor acts on. */
function handleEnvelope(turn: Turn, state: SupervisorState, msg: Extract<SupervisorMessage, { id: string }>): SupervisorState {
  const { ctx } = turn;
  const now = turn.iso;
  switch (msg.type) {
    case 'run.started': {
      turn.emit({ kind: 'startBudget', restoring: false });
      if (ctx.budget.wallClockSec !== undefined) {
        state.deadline = Date.parse(msg.time) + ctx.budget.wallClockSec * 1000;
        turn.emit({ kind: 'armDeadline', at: state.deadline });
      }
      return applyStep(turn, state, begin(ctx.def, state.sched, now), { causationId: msg.id });
    }
    case 'wait.registered':
      return applyStep(turn, state, waitOpened(state.sched, msg.wait), { causationId: msg.id, node: msg.wait.node });
    case 'budget.escalated':
      return applyStep(turn, state, waitOpened(state.sched, budgetWait(turn, msg.payload)), { causationId: msg.id, node: msg.payload.node });
    case 'budget.exceeded':
      return applyStep(turn, state, stopRun(state.sched, 'budget_exceeded', budgetError(msg.payload), now), { causationId: msg.id, causeKey: msg.id });
    case 'node.completed': {
      const p = msg.payload;
      const step = nodeSucceeded(ctx.def, state.sched, ctx.input, p.node, p.output, now, p);
      if (step.state === state.sched) return state; // stale or duplicate
      state.children = stopChild(turn, state.children, p.node);
      // Its output is held once, by this envelope of the run's log (a replay's may be inherited: not in its log).
      if (!ctx.replay) state.outputAt = { ...state.outputAt, [p.node]: msg.id };
      return applyStep(turn, state, step, { causationId: msg.id, node: p.node });
    }
    case 'node.failed': {
      const p = msg.payload;
      const step = nodeFailed(ctx.def, state.sched, p.node, p.error, p.retryable, now, p);
      if (step.state === state.sched) return state;
      state.children = stopChild(turn, state.children, p.node);
      if (p.error.code === 'AO_EFFECT_UNKNOWN_OUTCOME') return park(turn, state, p.error, msg.id);
      if (p.error.code === 'AO_BUDGET_EXCEEDED') {
        return applyStep(turn, state, stopRun(state.sched, 'budget_exceeded', { ...p.error, node: p.node }, now), { causationId: msg.id, node: p.node });
      }
      return applyStep(turn, state, step, { causationId: msg.id, node: p.node });
    }
  }
}

/** The wait a soft budget limit opens: a person grants more, denies, or forks the run. */
function budgetWait(turn: Turn, p: Extract<SupervisorMessage, { type: 'budget.escalated' }>['payload']): WaitInfo {
  const hard = turn.ctx.budget[p.limit];
  return {
    id: `budget/${p.limit}/${p.value}`,
    node: p.node,
    kind: 'budget',
    prompt: `The run reached its soft ${p.limit} limit (${Math.round(p.used * 1000) / 1000} used of ${p.value}${hard !== undefined ? `; hard limit ${hard}` : ''}). Grant more, deny (the run ends budget_exceeded), or fork it with a new budget?`,
    payload: { limit: p.limit, value: p.value, used: p.used, ...(hard !== undefined ? { hard } : {}), actor: p.actor },
    schema: schemaJson(BudgetAnswerSchema),
    since: turn.iso,
    countWallClock: false,
    actor: BUDGET_PATH,
  };
}

/** A strict replay that diverged ends here, failed with its divergence (the children its step may have spawned stop with it). */
function endDiverged(turn: Turn, state: SupervisorState, d: Divergence): SupervisorState {
  const error = { code: 'AO_REPLAY_DIVERGED', message: `the replay diverged from the original at step ${d.step} (${d.actor}): ${d.diff[0] ?? ''}`, details: d };
  return applyStep(turn, state, stopRun(state.sched, 'failed', error, turn.iso), { causeKey: 'diverged' });
}

/** An effect's outcome is unknown: stop everything and wait for a person (the run is `waiting`). */
function park(turn: Turn, state: SupervisorState, error: ErrorInfo, causationId: string): SupervisorState {
  const { ctx } = turn;
  for (const c of state.children) turn.emit({ kind: 'stopChild', node: c.node, unregister: true });
  const next: SupervisorState = { ...state, children: [], sched: { ...state.sched, finished: true }, step: state.step + 1 };
  turn.emit({
    kind: 'commit',
    commit: {
      notes: [{ to: ctx.self, type: 'run.parked', payload: { error }, causationId, key: 'run.parked' }],
      patch: { status: 'waiting', error, usage: ctx.ledger.usage, nodes: next.sched.nodes, releaseLease: true },
      checkpoint: { step: next.step, node: error.node ?? null, state: snapshotState(ctx, next) },
    },
  });
  turn.emit({ kind: 'finished' });
  return next;
}

/** Resolve waits one after another, as a recording says they were. */
function resolveAll(turn: Turn, state: SupervisorState, answers: ReadonlyArray<{ wait: string; outcome: RecordedWake['resolved'][number]['outcome'] }>): Step {
  let step: Step = { state: state.sched, decisions: [] };
  for (const a of answers) step = chain(step, (st) => waitResolved(turn.ctx.def, st, a.wait, a.outcome, turn.iso));
  return step;
}

/**
 * Restored from a checkpoint: a passivated run first takes the answers that woke it (and the
 * waits that timed out): an answer must be in the log before the actor that asked re-runs. Then
 * (`restoreChildren`) the live children are re-spawned with their start messages, and retries and
 * wait timeouts armed again.
 */
function restore(turn: Turn, prev: SupervisorState, starts: Envelope[]): SupervisorState {
  const { ctx } = turn;
  let state = prev;
  turn.emit({ kind: 'startBudget', restoring: true });
  let wake: Wake | undefined;
  if (state.pausedAt !== undefined) {
    const pausedMs = Math.max(0, Math.round(ctx.now - state.pausedAt));
    // Waiting for a person does not use up the run's wall clock unless a wait says it counts.
    const paused = !Object.values(state.sched.waits ?? {}).some((w) => w.countWallClock);
    const { pausedAt: _p, ...rest } = state;
    state = paused && rest.deadline !== undefined ? { ...rest, deadline: rest.deadline + pausedMs } : rest;
    wake = { pausedMs, paused };
  }
  turn.emit({ kind: 'armDeadline', at: state.deadline });
  if (wake && !wake.paused && state.deadline !== undefined && ctx.now >= state.deadline) {
    // Out of wall clock while asleep (a wait that counts it): the run ends, whatever was answered.
    return applyStep(turn, state, stopRun(state.sched, 'budget_exceeded', wallClockError(ctx.budget, state.deadline, ctx.now), turn.iso), {
      causeKey: 'deadline',
      force: true,
      wake,
    });
  }
  const open = Object.keys(state.sched.waits ?? {});
  // A recorded replay restored where its original slept wakes as the original did, with its answers.
  const woke = !wake && open.length ? ctx.recorded.wake(state.step + 1, open) : undefined;
  // Or, where the original took an answer while hosted right after this step, it takes it now.
  const hosted = !wake && !woke && open.length ? ctx.recorded.hostedStep(state.step + 1) : undefined;
  if (woke) state = wakeRecorded(turn, state, woke);
  else if (hosted) state = answerHosted(turn, state, hosted);
  else if (!wake && ctx.recorded.servesBySteps) {
    // A recorded replay reads no answer of its own and takes no timeout by its clock: the original's are served at their steps.
  } else if (wake || open.length) state = answerAndTimeouts(turn, state, wake);
  turn.then.push({ type: 'restoreChildren', starts });
  return state;
}

/** A restored run takes the answers that are in, and the timeouts that fell due. */
function answerAndTimeouts(turn: Turn, state: SupervisorState, wake: Wake | undefined): SupervisorState {
  const { ctx } = turn;
  const { step, consumed, dropped } = answer(ctx.def, state.sched, turn.signals(), turn.iso);
  for (const message of dropped) turn.emit({ kind: 'log', message });
  const due = Object.values(step.state.waits ?? {}).filter((w) => w.timeoutAt !== undefined && w.timeoutAt <= ctx.now);
  let all = step;
  for (const w of due) all = chain(all, (st) => waitResolved(ctx.def, st, w.id, timeoutOutcome(ctx.def, w), turn.iso));
  return applyStep(turn, state, all, { causeKey: 'resume', consumed, force: true, ...(wake ? { wake } : {}) });
}

/** The second half of a restore: re-spawn the live children with their start messages, re-arm retries and wait timeouts. */
function restoreChildren(turn: Turn, prev: SupervisorState, starts: Envelope[]): SupervisorState {
  const byId = new Map(starts.map((e) => [e.id, e]));
  const { restore: live = [], ...state } = prev;
  for (const l of live) {
    state.children = spawnChild(turn, state.children, l.node, l.name);
    const start = byId.get(l.startId);
    if (start) turn.emit({ kind: 'tell', node: l.node, envelope: start });
  }
  for (const [node, n] of Object.entries(state.sched.nodes)) {
    if (n.status === 'retrying') turn.emit({ kind: 'armAt', timer: { local: 'retry', node }, at: n.retryAt ?? 0, capped: false });
  }
  for (const w of Object.values(state.sched.waits ?? {})) armWait(turn, w);
  return state;
}

/** A step committed and the run goes on: a recorded replay wakes as its original did, or takes the answers its original took while hosted. */
function committed(turn: Turn, state: SupervisorState, woke: RecordedWake | undefined): SupervisorState {
  if (woke) return wakeRecorded(turn, state, woke);
  // A recorded replay whose original took an answer while hosted right after this step takes it now, before any message it holds.
  const hosted = turn.ctx.recorded.hostedStep(state.step + 1);
  return hosted ? answerHosted(turn, state, hosted) : state;
}

/**
 * A recorded replay where its original slept: it goes on at once, as the original woke at the
 * next step (see ./recorded-waits.ts): the same pause (the wall clock moves by it unless a wait
 * counted it), the same answers and timeouts, in the same order.
 */
function wakeRecorded(turn: Turn, prev: SupervisorState, woke: RecordedWake): SupervisorState {
  const { pausedAt: _p, ...state } = prev;
  if (woke.paused && state.deadline !== undefined) {
    state.deadline += woke.pausedMs;
    turn.emit({ kind: 'armDeadline', at: state.deadline });
  }
  return applyStep(turn, state, resolveAll(turn, state, woke.resolved), {
    causeKey: 'resume',
    force: true,
    wake: { pausedMs: woke.pausedMs, paused: woke.paused },
  });
}

/**
 * A recorded replay where its original took answers while hosted (a person's answer read at a
 * poke, or a wait's timer): the same step, made at once after the one before it, with the
 * original's answers in its order.
 */
function answerHosted(turn: Turn, state: SupervisorState, hosted: RecordedHostedStep): SupervisorState {
  return applyStep(turn, state, resolveAll(turn, state, hosted.answers), { node: hosted.node, causeKey: hosted.causeKey, force: true });
}
