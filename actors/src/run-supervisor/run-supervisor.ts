import type { AgentKind } from '@ao/graphs';
import { actorPath, endSpan } from '@ao/runtime';
import { isoNow, log } from '@ao/runtime';
import { runEnded, stepSpan } from '../telemetry.js';
import type { ActorContext, ActorRef, Behaviour, CheckpointWrite, Divergence, Envelope, EnvelopeDraft, ErrorInfo, RunPatch, SignalRecord, TraceContext, WaitInfo } from '@ao/runtime';
import { ApprovalAnswerSchema, BudgetAnswerSchema, InterruptAnswerSchema, isAoError, schemaJson } from '@ao/graphs';
import type { Budget, BudgetAnswer } from '@ao/graphs';
import { budgetMessage, raise } from '../budget/ledger.js';
import type { SoftLimits } from '../budget/ledger.js';
import type { Payload } from '../messages.js';
import { BUDGET_PATH } from '../effects/effects.js';
import type { z } from 'zod';
import { parseMessage } from '../messages.js';
import type { Message } from '../messages.js';
import { fromPipeline } from '../pipeline/pipeline.js';
import { fromSupervisor } from '../supervisor/supervisor.js';
import { fromBranch, fromSwarm } from '../swarm/swarm.js';
import { draft, executionName, isEnvelope } from '../services.js';
import type { ActorMessage, RunServices } from '../services.js';
import type { CheckpointState } from './checkpoint.js';
import { recordedAnswersAt, recordedHostedStep, recordedWake, servesAnswersBySteps, withRecordedTimes } from './recorded-waits.js';
import type { RecordedHostedStep, RecordedWake } from './recorded-waits.js';
import { fromBudget, BUDGET_NAME } from '../budget/budget-actor.js';
import { newLedger } from '../budget/ledger.js';
import { nodeLimitsOf } from '../budget/usage.js';
import { begin, initialState, nodeFailed, nodeSucceeded, quiescent, retryDue, stopRun, waitOpened, waitResolved } from './scheduler.js';
import type { SchedulerState, Step, WaitOutcome } from './scheduler.js';

export const SUPERVISOR_PATH = actorPath('supervisor');

type Snapshot = { step: number; make: (fresh: readonly Envelope[]) => CheckpointWrite };
const withNode = (c: Snapshot, node: string | null): Snapshot => ({ step: c.step, make: (fresh) => ({ ...c.make(fresh), node }) });

function budgetError(p: { limit: string; scope: string; value: number; used: number; reserved?: number | undefined; inFlight?: number | undefined; asked?: number | undefined; actor: string }): ErrorInfo {
  const { limit, scope, value, used, actor } = p;
  const extra = { ...(p.reserved !== undefined ? { reserved: p.reserved } : {}), ...(p.inFlight !== undefined ? { inFlight: p.inFlight } : {}), ...(p.asked !== undefined ? { asked: p.asked } : {}) };
  return {
    code: 'AO_BUDGET_EXCEEDED',
    message: `${budgetMessage({ limit, scope, value, used, ...extra })} (at ${actor})`,
    details: { limit, scope, value, used, ...extra, actor },
  };
}

interface Child {
  ref: ActorRef<ActorMessage>;
  name: string;
}

interface SupervisorState {
  sched: SchedulerState;
  step: number;
  deadline?: number;
  budgetActor?: ActorRef<ActorMessage>;
  children: Map<string, Child>;
  /** Children to re-spawn when restored from a checkpoint (until the resume message comes). */
  restore?: CheckpointState['live'];
  /** When the run was passivated (epoch ms), until it resumes. */
  pausedAt?: number;
  /** The run was passivated: this supervisor is done. */
  asleep?: boolean;
  /** The `node.completed` envelope each node's output came from (its id): checkpoints refer to it instead of holding the output again. */
  outputAt?: Record<string, string>;
}

/** The node whose output a checkpoint reference puts back (see `CheckpointState.$refs`). */
const outputRefNode = (r: NonNullable<CheckpointState['$refs']>[number]): string | undefined => (r.path.length === 3 && r.path[0] === 'sched' && r.path[1] === 'outputs' && r.field.join('.') === 'output' ? r.path[2] : undefined);

/** The schema a wait's answer must fit: the node's own, or the default of its kind. */
export function answerSchema(def: RunServices['def'], node: string, kind: WaitInfo['kind']): z.ZodType {
  const n = def.node(node);
  if (kind === 'approval') return n?.approval?.schema ?? ApprovalAnswerSchema;
  if (kind === 'interrupt') return n?.interrupt?.schema ?? InterruptAnswerSchema;
  return BudgetAnswerSchema;
}

/**
 * What a person's grant raises: the amounts given, and the limit that was reached by its own soft
 * size if the grant names no amount for it (a grant that left it where it was would be asked again).
 */
export function grantedRaise(grant: BudgetAnswer & { decision: 'grant' }, wait: WaitInfo, budget: Budget): SoftLimits {
  const reached = (wait.payload as { limit?: 'tokens' | 'tools' | 'usd' } | undefined)?.limit;
  const by: SoftLimits = { ...(grant.tokens ? { tokens: grant.tokens } : {}), ...(grant.tools ? { tools: grant.tools } : {}), ...(grant.usd ? { usd: grant.usd } : {}) };
  if (reached && by[reached] === undefined) by[reached] = budget.soft?.[reached] ?? 0;
  return by;
}

/** Combine steps taken one after another into one (each starts from the state the previous left). */
function chain(first: Step, next: (state: SchedulerState) => Step): Step {
  const second = next(first.state);
  return { state: second.state, decisions: [...first.decisions, ...second.decisions] };
}

/** The behaviour of a node task's actor, from its start message (`node.start` or `branch.start`). */
export function taskBehaviour(start: Envelope, s: RunServices): Behaviour<ActorMessage, unknown> | undefined {
  if (start.type === 'branch.start') return fromBranch(s) as Behaviour<ActorMessage, unknown>;
  const node = s.def.node(String((start.payload as { node?: unknown } | null)?.node));
  return start.type === 'node.start' && node && node.agent !== 'swarm' ? KINDS[node.agent](s) : undefined;
}

const KINDS: Record<AgentKind, (s: RunServices) => Behaviour<ActorMessage, unknown>> = {
  pipeline: fromPipeline,
  supervisor: fromSupervisor,
  swarm: fromSwarm as (s: RunServices) => Behaviour<ActorMessage, unknown>,
};

/**
 * The run supervisor: one per run. It walks the graph (decisions come from the pure functions in
 * scheduler.ts), spawns one child actor per node execution, owns node retries,
 * and ends the run. Each step's decisions, the run row's new state and a checkpoint of the
 * supervisor commit together; restored from a checkpoint, it re-spawns its live children and
 * hands them their start messages again.
 */
export function fromRunSupervisor(s: RunServices, restored?: CheckpointState): Behaviour<ActorMessage, SupervisorState> {
  const timers = new Set<() => void>();
  /** The wall-clock deadline's timer (one at a time: a deadline moved by a pause is armed again). */
  let deadlineTimer: (() => void) | undefined;
  /** The trace context of the message being handled: the step's span links to its sender's. */
  let cause: TraceContext | null = null;
  return {
    initialState: restored
      ? {
          sched: restored.sched,
          step: restored.step,
          children: new Map(),
          restore: restored.live,
          ...(restored.deadline !== undefined ? { deadline: restored.deadline } : {}),
          ...(restored.pausedAt !== undefined ? { pausedAt: restored.pausedAt } : {}),
          // A replay's outputs from before its step came from its original's log, not its own.
          ...(restored.$refs && !s.replay ? { outputAt: Object.fromEntries(restored.$refs.flatMap((r) => (outputRefNode(r) ? [[outputRefNode(r)!, r.id]] : []))) } : {}),
        }
      : { sched: initialState(s.def), step: 0, children: new Map() },
    async receive(state, msg, ctx) {
      if (state.sched.finished || state.asleep) return state;
      const now = isoNow(s.clock);
      cause = isEnvelope(msg) ? msg.trace : null;
      if (!isEnvelope(msg)) {
        switch (msg.local) {
          case 'retry':
            return apply(state, retryDue(s.def, state.sched, msg.node, now), ctx, null, msg.node, `retry/${msg.node}/${state.sched.nodes[msg.node]?.attempt}`);
          case 'cancel':
            return apply(state, stopRun(state.sched, 'cancelled', { code: 'AO_RUN_CANCELLED', message: msg.reason }, now), ctx, null, null, 'cancel');
          case 'deadline':
            return apply(state, stopRun(state.sched, 'budget_exceeded', wallClockError(state), now), ctx, null, null, 'deadline');
          case 'resume':
            return resume(state, msg.starts, ctx);
          case 'signals': {
            // A poke: what is pending is read now (a snapshot sent earlier may hold answers already taken).
            const { step, consumed } = answer(state.sched, await s.pendingSignals(), now);
            return apply(state, step, ctx, null, null, 'signals', consumed);
          }
          case 'waitTimeout': {
            const wait = state.sched.waits?.[msg.wait];
            if (!wait) return state;
            return apply(state, waitResolved(s.def, state.sched, wait.id, timeoutOutcome(wait), now), ctx, null, wait.node, `timeout/${wait.id}`);
          }
          case 'diverged':
            return endDiverged(state, msg.divergence, ctx);
        }
      }
      let m: Message;
      try {
        m = parseMessage(msg);
      } catch (e) {
        log.error(`dropped invalid envelope ${msg.id}: ${(e as Error).message}`, { component: 'supervisor', runId: s.runId });
        return state;
      }
      switch (m.type) {
        case 'run.started':
          startBudget(state, ctx, false);
          if (s.budget.wallClockSec !== undefined) {
            state.deadline = Date.parse(msg.time) + s.budget.wallClockSec * 1000;
            armDeadline(state, ctx);
          }
          return apply(state, begin(s.def, state.sched, now), ctx, msg.id, null);
        case 'wait.registered': {
          const wait = m.payload as WaitInfo;
          return apply(state, waitOpened(state.sched, wait), ctx, msg.id, wait.node);
        }
        case 'budget.escalated': {
          const p = m.payload as Payload<'budget.escalated'>;
          const hard = s.budget[p.limit];
          const wait: WaitInfo = {
            id: `budget/${p.limit}/${p.value}`,
            node: p.node,
            kind: 'budget',
            prompt: `The run reached its soft ${p.limit} limit (${Math.round(p.used * 1000) / 1000} used of ${p.value}${hard !== undefined ? `; hard limit ${hard}` : ''}). Grant more, deny (the run ends budget_exceeded), or fork it with a new budget?`,
            payload: { limit: p.limit, value: p.value, used: p.used, ...(hard !== undefined ? { hard } : {}), actor: p.actor },
            schema: schemaJson(BudgetAnswerSchema),
            since: now,
            countWallClock: false,
            actor: BUDGET_PATH,
          };
          return apply(state, waitOpened(state.sched, wait), ctx, msg.id, p.node);
        }
        case 'budget.exceeded': {
          const p = m.payload;
          const error = budgetError(p);
          return apply(state, stopRun(state.sched, 'budget_exceeded', error, now), ctx, msg.id, null, msg.id);
        }
        case 'node.completed': {
          const step = nodeSucceeded(s.def, state.sched, s.input, m.payload.node, m.payload.output, now, m.payload);
          if (step.state === state.sched) return state; // stale or duplicate
          stopChild(state, m.payload.node);
          // Its output is held once, by this envelope of the run's log (a replay's may be inherited: not in its log).
          if (!s.replay) state.outputAt = { ...state.outputAt, [m.payload.node]: msg.id };
          return apply(state, step, ctx, msg.id, m.payload.node);
        }
        case 'node.failed': {
          const step = nodeFailed(s.def, state.sched, m.payload.node, m.payload.error, m.payload.retryable, now, m.payload);
          if (step.state === state.sched) return state;
          stopChild(state, m.payload.node);
          if (m.payload.error.code === 'AO_EFFECT_UNKNOWN_OUTCOME') return park(state, m.payload.error, msg.id, ctx);
          if (m.payload.error.code === 'AO_BUDGET_EXCEEDED') {
            return apply(state, stopRun(state.sched, 'budget_exceeded', { ...m.payload.error, node: m.payload.node }, now), ctx, msg.id, m.payload.node);
          }
          return apply(state, step, ctx, msg.id, m.payload.node);
        }
        default:
          return state; // observations (its own notes, effects) are for the log
      }
    },
    onStop() {
      for (const t of timers) t();
    },
    onCrash(err) {
      for (const t of timers) t();
      s.crashed(err);
    },
  };

  function wallClockError(state: SupervisorState): ErrorInfo {
    const limit = s.budget.wallClockSec ?? 0;
    const used = (s.clock.now() - ((state.deadline ?? s.clock.now()) - limit * 1000)) / 1000;
    return budgetError({ limit: 'wallClockSec', scope: 'run', value: limit, used: Math.round(used * 1000) / 1000, actor: 'supervisor' });
  }

  /** The run's budget actor, with the ledger it had when the run is restored. */
  function startBudget(state: SupervisorState, ctx: ActorContext<ActorMessage>, restoring: boolean): void {
    const { wallClockSec: _clock, ...limits } = s.budget;
    const ledger = restoring && s.ledger ? s.ledger : newLedger(limits, nodeLimitsOf(s.def));
    const ref = ctx.spawn(BUDGET_NAME, fromBudget(s, ledger, s.prices));
    s.register(ref);
    state.budgetActor = ref;
  }

  function armDeadline(state: SupervisorState, ctx: ActorContext<ActorMessage>): void {
    if (deadlineTimer) {
      deadlineTimer();
      timers.delete(deadlineTimer);
      deadlineTimer = undefined;
    }
    if (state.deadline === undefined) return;
    const cancel = s.clock.setTimer(Math.max(0, state.deadline - s.clock.now()), () => {
      timers.delete(cancel);
      ctx.self.tell({ local: 'deadline' });
    });
    deadlineTimer = cancel;
    timers.add(cancel);
  }

  function stopChild(state: SupervisorState, node: string): void {
    const c = state.children.get(node);
    if (c) {
      c.ref.stop();
      state.children.delete(node);
      s.unregister(c.ref.path);
    }
  }

  function spawnChild(state: SupervisorState, node: string, name: string, ctx: ActorContext<ActorMessage>): ActorRef<ActorMessage> {
    const kind = s.def.node(node)!.agent;
    // A node execution runs here, on its run's host: its messages stay in process and ride in the
    // run's commits. In a cluster, runs spread over the nodes through the run queue, and a swarm's
    // branches (the work one run fans out) through the task queue.
    const ref = ctx.spawn(name, KINDS[kind](s));
    s.register(ref);
    state.children.set(node, { ref, name });
    return ref;
  }

  function armRetry(node: string, delayMs: number, ctx: ActorContext<ActorMessage>): void {
    const cancel = s.clock.setTimer(Math.max(0, delayMs), () => {
      timers.delete(cancel);
      ctx.self.tell({ local: 'retry', node });
    });
    timers.add(cancel);
  }

  /**
   * Restored from a checkpoint: re-spawn the live children with their start messages, re-arm
   * retries and wait timeouts. A passivated run first takes the answers that woke it (and the
   * waits that timed out): an answer must be in the log before the actor that asked re-runs.
   */
  async function resume(prev: SupervisorState, starts: Envelope[], ctx: ActorContext<ActorMessage>): Promise<SupervisorState> {
    let state = prev;
    startBudget(state, ctx, true);
    let wake: { pausedMs: number; paused: boolean } | undefined;
    if (state.pausedAt !== undefined) {
      const pausedMs = Math.max(0, Math.round(s.clock.now() - state.pausedAt));
      // Waiting for a person does not use up the run's wall clock unless a wait says it counts.
      const paused = !Object.values(state.sched.waits ?? {}).some((w) => w.countWallClock);
      if (paused && state.deadline !== undefined) state.deadline += pausedMs;
      delete state.pausedAt;
      wake = { pausedMs, paused };
    }
    armDeadline(state, ctx);
    if (wake && !wake.paused && state.deadline !== undefined && s.clock.now() >= state.deadline) {
      // Out of wall clock while asleep (a wait that counts it): the run ends, whatever was answered.
      return apply(state, stopRun(state.sched, 'budget_exceeded', wallClockError(state), isoNow(s.clock)), ctx, null, null, 'deadline', [], true, wake);
    }
    const open = Object.keys(state.sched.waits ?? {});
    // A recorded replay restored where its original slept wakes as the original did, with its answers.
    const woke = !wake && open.length ? recordedWake(s.journal, state.step + 1, open) : undefined;
    // Or, where the original took an answer while hosted right after this step, it takes it now.
    const hosted = !wake && !woke && open.length ? recordedHostedStep(s.journal, state.step + 1) : undefined;
    if (woke) {
      state = await wakeRecorded(state, woke, ctx);
      if (state.asleep || state.sched.finished) return state;
    } else if (hosted) {
      state = await answerHosted(state, hosted, ctx);
      if (state.asleep || state.sched.finished) return state;
    } else if (!wake && servesAnswersBySteps(s.journal)) {
      // A recorded replay reads no answer of its own and takes no timeout by its clock: the original's are served at their steps.
    } else if (wake || open.length) {
      const now = isoNow(s.clock);
      const { step, consumed } = answer(state.sched, await s.pendingSignals(), now);
      const due = Object.values(step.state.waits ?? {}).filter((w) => w.timeoutAt !== undefined && w.timeoutAt <= s.clock.now());
      let all = step;
      for (const w of due) all = chain(all, (st) => waitResolved(s.def, st, w.id, timeoutOutcome(w), now));
      state = await apply(state, all, ctx, null, null, 'resume', consumed, true, wake);
      if (state.asleep || state.sched.finished) return state;
    }
    const byId = new Map(starts.map((e) => [e.id, e]));
    for (const live of state.restore ?? []) {
      const ref = spawnChild(state, live.node, live.name, ctx);
      const start = byId.get(live.startId);
      if (start) ref.tell(start);
    }
    delete state.restore;
    for (const [node, n] of Object.entries(state.sched.nodes)) {
      if (n.status === 'retrying') armRetry(node, (n.retryAt ?? 0) - s.clock.now(), ctx);
    }
    for (const w of Object.values(state.sched.waits ?? {})) armWait(w, ctx);
    return state;
  }

  /**
   * A recorded replay where its original slept: it goes on at once, as the original woke at the
   * next step (see ./recorded-waits.ts): the same pause (the wall clock moves by it unless a wait
   * counted it), the same answers and timeouts, in the same order.
   */
  function wakeRecorded(state: SupervisorState, woke: RecordedWake, ctx: ActorContext<ActorMessage>): Promise<SupervisorState> {
    delete state.pausedAt;
    if (woke.paused && state.deadline !== undefined) {
      state.deadline += woke.pausedMs;
      armDeadline(state, ctx);
    }
    const now = isoNow(s.clock);
    let step: Step = { state: state.sched, decisions: [] };
    for (const r of woke.resolved) step = chain(step, (st) => waitResolved(s.def, st, r.wait, r.outcome, now));
    return apply(state, step, ctx, null, null, 'resume', [], true, { pausedMs: woke.pausedMs, paused: woke.paused });
  }

  /**
   * A recorded replay where its original took answers while hosted (a person's answer read at a
   * poke, or a wait's timer): the same step, made at once after the one before it (see
   * ./recorded-waits.ts), with the original's answers in its order.
   */
  function answerHosted(state: SupervisorState, hosted: RecordedHostedStep, ctx: ActorContext<ActorMessage>): Promise<SupervisorState> {
    const now = isoNow(s.clock);
    let step: Step = { state: state.sched, decisions: [] };
    for (const a of hosted.answers) step = chain(step, (st) => waitResolved(s.def, st, a.wait, a.outcome, now));
    return apply(state, step, ctx, null, hosted.node, hosted.causeKey, [], true);
  }

  function timeoutOutcome(w: WaitInfo): WaitOutcome {
    const action = w.kind === 'approval' ? (s.def.node(w.node)?.approval?.onTimeout ?? 'reject') : w.kind === 'interrupt' ? (s.def.node(w.node)?.interrupt?.onTimeout ?? 'continue') : 'reject';
    return { kind: 'timeout', action };
  }

  /** Arm a wait's timeout (a timeout beyond what a timer can hold is left to the wake-up at `wakeAt`). */
  function armWait(w: WaitInfo, ctx: ActorContext<ActorMessage>): void {
    // A recorded replay takes the original's timeouts at the steps it took them (its clock times are the original's: past).
    if (w.timeoutAt === undefined || servesAnswersBySteps(s.journal)) return;
    const delay = w.timeoutAt - s.clock.now();
    if (delay > 2 ** 31 - 1) return;
    const cancel = s.clock.setTimer(Math.max(0, delay), () => {
      timers.delete(cancel);
      ctx.self.tell({ local: 'waitTimeout', wait: w.id });
    });
    timers.add(cancel);
  }

  /**
   * Match answers to open waits: by wait id, or (an answer that came before its wait) by node, the
   * oldest first. Answers that fit no schema or answer a wait already closed are consumed and
   * dropped; early answers for a node with no open wait stay pending.
   */
  function answer(sched: SchedulerState, signals: readonly SignalRecord[], now: string): { step: Step; consumed: string[] } {
    let step: Step = { state: sched, decisions: [] };
    const consumed: string[] = [];
    for (const sig of signals) {
      const open = Object.values(step.state.waits ?? {});
      // An early answer (no wait id) is for the node's approval or question, never a budget wait.
      const wait = sig.waitId !== null ? open.find((w) => w.id === sig.waitId) : open.find((w) => w.node === sig.node && w.kind !== 'budget');
      if (!wait) {
        if (sig.waitId !== null) consumed.push(sig.id); // its wait is closed: nothing to answer
        continue;
      }
      consumed.push(sig.id);
      const parsed = answerSchema(s.def, wait.node, wait.kind).safeParse(sig.payload);
      if (!parsed.success) {
        log.error(`dropped signal ${sig.id} for wait ${wait.id}: ${parsed.error.issues[0]?.message}`, { component: 'supervisor', runId: s.runId });
        continue;
      }
      step = chain(step, (st) => waitResolved(s.def, st, wait.id, { kind: 'signal', payload: parsed.data, signal: sig.id }, now));
    }
    return { step, consumed };
  }

  /** The checkpoint of a step, completed when its commit runs (with the ledger as of its last event). */
  function snapshot(state: SupervisorState): Snapshot {
    const cp = snapshotState(state);
    return {
      step: state.step,
      make: (fresh) => {
        const { used, byNode, reserved, soft, usage } = s.ledgerAt(fresh);
        return { step: state.step, node: null, graphVersion: s.def.version, state: { ...cp, usage, ledger: { used, byNode, reserved, ...(soft ? { soft } : {}) } } };
      },
    };
  }

  /**
   * The supervisor's part of a checkpoint (its usage, like its ledger, is the log's as of the
   * checkpoint: see `snapshot`). Node outputs are held by their `node.completed` envelopes: the
   * checkpoint refers to them (`$refs`) instead of holding them again (issue 22).
   */
  function snapshotState(state: SupervisorState): Omit<CheckpointState, 'usage'> {
    const held = Object.entries(state.outputAt ?? {}).filter(([node]) => state.sched.outputs[node] !== undefined);
    const sched = held.length ? { ...state.sched, outputs: Object.fromEntries(Object.entries(state.sched.outputs).filter(([node]) => !state.outputAt![node])) } : state.sched;
    return {
      v: 1,
      step: state.step,
      sched,
      ...(held.length ? { $refs: held.map(([node, id]) => ({ path: ['sched', 'outputs', node], id, field: ['output'] })) } : {}),
      ...(state.deadline !== undefined ? { deadline: state.deadline } : {}),
      // Children not re-spawned yet (a restored run settling its waits first) are live all the same.
      live: [...[...state.children].map(([node, c]) => ({ node, name: c.name, startId: s.journal.idOf(`${c.ref.path}/start`) })), ...(state.restore ?? [])],
      ...(state.pausedAt !== undefined ? { pausedAt: state.pausedAt } : {}),
    };
  }

  /** A strict replay that diverged ends here, failed with its divergence (the children this step may have spawned stop with it). */
  function endDiverged(state: SupervisorState, d: Divergence, ctx: ActorContext<ActorMessage>): Promise<SupervisorState> {
    const error = { code: 'AO_REPLAY_DIVERGED', message: `the replay diverged from the original at step ${d.step} (${d.actor}): ${d.diff[0] ?? ''}`, details: d };
    return apply(state, stopRun(state.sched, 'failed', error, isoNow(s.clock)), ctx, null, null, 'diverged');
  }

  /** An effect's outcome is unknown: stop everything and wait for a person (the run is `waiting`). */
  async function park(state: SupervisorState, error: ErrorInfo, causationId: string, ctx: ActorContext<ActorMessage>): Promise<SupervisorState> {
    for (const node of [...state.children.keys()]) stopChild(state, node);
    state.sched = { ...state.sched, finished: true };
    state.step += 1;
    await s.journal.append(
      [draft(s, { from: ctx.path, to: ctx.path, type: 'run.parked', payload: { error }, causationId, key: 'run.parked' })],
      { patch: { status: 'waiting', error, usage: s.ledgerAt([]).usage, nodes: state.sched.nodes, releaseLease: true }, checkpoint: withNode(snapshot(state), error.node ?? null) },
    );
    s.finished();
    return state;
  }

  async function apply(
    state: SupervisorState,
    first: Step,
    ctx: ActorContext<ActorMessage>,
    causationId: string | null,
    node: string | null,
    causeKey: string = causationId ?? 'none',
    consumed: string[] = [],
    force = false,
    wake?: { pausedMs: number; paused: boolean },
  ): Promise<SupervisorState> {
    let step = first;
    // About to wait for a person: answers that are already in (they came early, or while the
    // wait was being opened) are taken now rather than after a passivation.
    if (quiescent(step.state) && servesAnswersBySteps(s.journal)) {
      // A recorded replay takes those the original took in this step (one that came early), from its log.
      const now = isoNow(s.clock);
      for (const a of recordedAnswersAt(s.journal, state.step + 1, new Set(Object.keys(step.state.waits ?? {})))) {
        step = chain(step, (st) => waitResolved(s.def, st, a.wait, a.outcome, now));
      }
    } else if (quiescent(step.state)) {
      const taken = new Set(consumed);
      const more = answer(step.state, (await s.pendingSignals()).filter((sig) => !taken.has(sig.id)), isoNow(s.clock));
      if (more.consumed.length) {
        step = chain(step, () => more.step);
        consumed = [...consumed, ...more.consumed];
      }
    }
    if (!step.decisions.length && step.state === state.sched && !consumed.length && !force && !wake) return state;
    // A recorded replay's waits open at the times its original's did.
    step = withRecordedTimes(s.journal, state.sched, step, state.step + 1);
    // A person forked the run at a soft budget limit: the fork (from the latest step, with the new
    // budget) exists before this run ends, and its end names it.
    for (const d of step.decisions) {
      if (d.kind !== 'resolved' || d.wait.kind !== 'budget' || d.outcome.kind !== 'signal') continue;
      const a = d.outcome.payload as { decision?: string; budget?: Record<string, unknown> };
      if (a.decision !== 'fork') continue;
      const forkedTo = await s.fork(state.step, a.budget ?? {}, `fork/${d.wait.id}`);
      step = { ...step, decisions: step.decisions.map((x) => (x.kind === 'finish' && x.error ? { ...x, error: { ...x.error, details: { ...x.error.details, forkedTo } } } : x)) };
    }
    const next: SupervisorState = { ...state, sched: step.state, step: state.step + 1 };
    const span = stepSpan(s, next.step, cause);
    const drafts: EnvelopeDraft[] = [];
    const note = (to: EnvelopeDraft['to'], type: string, payload: unknown, key: string): void => {
      drafts.push(draft({ runId: s.runId, trace: span.trace }, { from: ctx.path, to, type, payload, causationId, key }));
    };
    let ended: { status: string; error?: ErrorInfo } | undefined;
    // The run's usage is its settlements' (nodes that failed or were cut off count too).
    const usage = s.ledgerAt([]).usage;
    const patch: RunPatch = { nodes: step.state.nodes, usage, ...(consumed.length ? { consumeSignals: consumed } : {}) };
    if (wake) {
      patch.status = 'running';
      note(ctx.path, 'run.resumed', { pausedMs: wake.pausedMs, wallClockPaused: wake.paused }, `resumed/${next.step}`);
    }
    let finished = false;
    for (const d of step.decisions) {
      switch (d.kind) {
        case 'start': {
          const ref = spawnChild(next, d.node, executionName(d.node, d.iteration, d.attempt), ctx);
          const context = {
            input: s.input,
            outputs: step.state.outputs,
            iterations: Object.fromEntries(Object.entries(step.state.nodes).map(([id, n]) => [id, n.iteration])),
            upstream: d.upstream,
            ...(step.state.approvals?.[d.node] !== undefined ? { approval: step.state.approvals[d.node] } : {}),
            ...(step.state.approvals && Object.keys(step.state.approvals).length ? { approvals: step.state.approvals } : {}),
          };
          note(ref.path, 'node.start', { node: d.node, iteration: d.iteration, attempt: d.attempt, context }, `${ref.path}/start`);
          break;
        }
        case 'skip':
          note(ctx.path, 'node.skipped', { node: d.node, reason: d.reason }, `skip/${d.node}/${causeKey}`);
          break;
        case 'loop':
          note(ctx.path, 'loop.iterated', { from: d.from, to: d.to, iteration: d.iteration, reset: d.reset }, `loop/${d.to}/${d.iteration}`);
          break;
        case 'retry':
          note(ctx.path, 'node.retry_scheduled', { node: d.node, attempt: d.attempt, delayMs: d.delayMs, error: d.error }, `retry/${d.node}/${step.state.nodes[d.node]!.iteration}.${d.attempt}`);
          armRetry(d.node, d.delayMs, ctx);
          break;
        case 'wait':
          note(ctx.path, 'wait.opened', d.wait, `wait/${d.wait.id}/opened`);
          armWait(d.wait, ctx);
          break;
        case 'resolved': {
          const w = d.wait;
          // A question's answer goes to the actor that asked, as the reply to its registration.
          const to = w.kind === 'interrupt' && w.actor ? (w.actor as EnvelopeDraft['to']) : ctx.path;
          const cause = w.kind === 'interrupt' ? s.journal.idOf(`${w.id}/wait`) : causationId;
          const grant = w.kind === 'budget' && d.outcome.kind === 'signal' ? (d.outcome.payload as BudgetAnswer) : undefined;
          if (grant?.decision === 'grant') {
            // The raise commits with the resolution (a crash cannot keep one without the other); the
            // budget actor applies it and decides the calls it held.
            const soft = raise(s.ledgerAt([]), grantedRaise(grant, w, s.budget)).soft ?? {};
            drafts.push(draft({ runId: s.runId, trace: span.trace }, { from: ctx.path, to: BUDGET_PATH, type: 'budget.raised', payload: { wait: w.id, soft }, causationId, key: `raised/${w.id}` }));
          }
          drafts.push(
            draft(
              { runId: s.runId, trace: span.trace },
              { from: ctx.path, to, type: 'wait.resolved', payload: { wait: w.id, node: w.node, kind: w.kind, outcome: d.outcome, ...(d.approved !== undefined ? { approved: d.approved } : {}) }, causationId: cause, key: `${w.id}/resolved` },
            ),
          );
          break;
        }
        case 'finish': {
          for (const id of d.cancel) stopChild(next, id);
          finished = true;
          ended = { status: d.status, ...(d.error ? { error: d.error } : {}) };
          note(ctx.path, 'run.finished', { status: d.status, ...(d.output ? { output: d.output } : {}), ...(d.error ? { error: d.error } : {}), usage }, 'run.finished');
          Object.assign(patch, { status: d.status, output: d.output ?? null, error: d.error ?? null, finishedAt: isoNow(s.clock), releaseLease: true });
          break;
        }
        default:
          d satisfies never;
      }
    }
    const waits = Object.values(step.state.waits ?? {});
    // Not while a granted call is in flight (its actor is not blocked on a person).
    const sleeping = !finished && quiescent(step.state) && !Object.keys(s.ledgerAt([]).reserved).length;
    // A recorded replay sleeps only where its original did not wake: it is woken with the original's answers at once.
    const woke = sleeping ? recordedWake(s.journal, next.step + 1, waits.map((w) => w.id)) : undefined;
    if (sleeping && woke) {
      next.pausedAt = s.clock.now();
      note(ctx.path, 'run.waiting', { waits }, `waiting/${next.step}`);
      patch.waits = waits;
    } else if (sleeping) {
      // Nothing can happen until a person answers: checkpoint and stop everything. Actors blocked
      // on a question are in the checkpoint as live; they re-run from their start when it is answered.
      next.pausedAt = s.clock.now();
      next.asleep = true;
      // Woken at the earliest timeout, or when the wall clock runs out if a wait counts it.
      const counting = waits.some((w) => w.countWallClock) && next.deadline !== undefined ? next.deadline : Infinity;
      const wakeAt = Math.min(counting, ...waits.map((w) => w.timeoutAt ?? Infinity));
      note(ctx.path, 'run.waiting', { waits }, `waiting/${next.step}`);
      Object.assign(patch, { status: 'waiting', waits, wakeAt: Number.isFinite(wakeAt) ? new Date(wakeAt).toISOString() : null, releaseLease: true });
    } else if (!finished && (waits.length || state.sched.waits)) {
      patch.waits = waits;
    } else if (finished) {
      Object.assign(patch, { waits: [], wakeAt: null });
    }
    try {
      // Answers to questions are read back by the actors that asked when they re-run (after a passivation or crash).
      // Staged when it only moves the graph on (the journal commits at once when the run ends,
      // sleeps, takes answers or changes its waits): it rides in the commit of the next effect.
      // Strict unless it ends the run: a recorded replay that no longer reproduces its original
      // opens no wait, does not sleep and starts nothing (the journal refuses such a step).
      const written = await s.journal.append(drafts, { patch, checkpoint: withNode(snapshot(next), node), stage: true, ...(finished ? {} : { strict: true }) });
      s.journal.remember(written.filter((e) => e.type === 'wait.resolved'));
    } catch (e) {
      endSpan(span.span, { code: 'AO_INTERNAL', message: (e as Error).message });
      const d = s.journal.replay?.divergence;
      if (isAoError(e) && e.code === 'AO_REPLAY_DIVERGED' && d) return endDiverged(state, d, ctx);
      throw e;
    }
    span.span.setAttribute('ao.decisions', step.decisions.map((d) => d.kind).join(','));
    endSpan(span.span);
    if (ended) {
      const budget = ended.error?.code === 'AO_BUDGET_EXCEEDED' ? ended.error.details : undefined;
      runEnded(s, ended.status, ended.error, budget ? [{ name: 'budget.exceeded', attributes: Object.fromEntries(Object.entries(budget).map(([k, v]) => [`ao.budget.${k}`, String(v)])) }] : [], usage);
    }
    if (finished) {
      for (const id of [...next.children.keys()]) stopChild(next, id);
      next.budgetActor?.stop();
      for (const t of timers) t();
      s.finished();
    } else if (woke) {
      return wakeRecorded(next, woke, ctx);
    } else if (sleeping) {
      for (const c of next.children.values()) c.ref.stop();
      next.children.clear();
      next.budgetActor?.stop();
      for (const t of timers) t();
      s.passivated();
    } else {
      // A recorded replay whose original took an answer while hosted right after this step takes it now, before any message it holds.
      const hosted = recordedHostedStep(s.journal, next.step + 1);
      if (hosted) return answerHosted(next, hosted, ctx);
    }
    return next;
  }
}
