import type { AgentKind } from '@ao/graphs';
import { isAoError } from '@ao/graphs';
import { actorPath, endSpan, log, payloadOf } from '@ao/runtime';
import type { ActorContext, ActorRef, Behaviour, CheckpointWrite, Divergence, Envelope, TraceContext } from '@ao/runtime';
import { runEnded, stepSpan } from '../telemetry.js';
import { parseMessage } from '../messages.js';
import { fromPipeline } from '../pipeline/pipeline.js';
import { fromSupervisor } from '../supervisor/supervisor.js';
import { fromBranch, fromSwarm } from '../swarm/swarm.js';
import { draft, isEnvelope } from '../services.js';
import type { ActorMessage, RunServices } from '../services.js';
import { fromBudget, BUDGET_NAME } from '../budget/budget-actor.js';
import { newLedger } from '../budget/ledger.js';
import { nodeLimitsOf } from '../budget/usage.js';
import type { CheckpointState } from './checkpoint.js';
import { recordedReads } from './recorded-waits.js';
import { reduce, restoredState } from './reducer.js';
import type { Commit, Effect, ReduceContext, SupervisorMessage, SupervisorState, TimerMessage } from './reducer-types.js';

export { answerSchema, grantedRaise } from './answers.js';
export type { SupervisorState } from './reducer-types.js';

export const SUPERVISOR_PATH = actorPath('supervisor');

/** The behaviour of a node task's actor, from its start message (`node.start` or `branch.start`). */
export function taskBehaviour(start: Envelope, s: RunServices): Behaviour<ActorMessage, unknown> | undefined {
  if (start.type === 'branch.start') return fromBranch(s) as Behaviour<ActorMessage, unknown>;
  const p = payloadOf(start, 'node.start');
  const node = p && s.def.node(p.node);
  return node && node.agent !== 'swarm' ? KINDS[node.agent](s) : undefined;
}

const KINDS: Record<AgentKind, (s: RunServices) => Behaviour<ActorMessage, unknown>> = {
  pipeline: fromPipeline,
  supervisor: fromSupervisor,
  swarm: fromSwarm as (s: RunServices) => Behaviour<ActorMessage, unknown>,
};

/** The reducer's message for what the actor received (undefined: nothing for it, e.g. an observation or an invalid envelope). */
function toMessage(s: RunServices, msg: ActorMessage): SupervisorMessage | undefined {
  if (!isEnvelope(msg)) {
    switch (msg.local) {
      case 'retry':
        return { type: 'retry', node: msg.node };
      case 'cancel':
        return { type: 'cancel', reason: msg.reason };
      case 'deadline':
        return { type: 'deadline' };
      case 'resume':
        return { type: 'restore', starts: msg.starts };
      case 'signals':
        return { type: 'signals' };
      case 'waitTimeout':
        return { type: 'waitTimeout', wait: msg.wait };
      case 'diverged':
        return { type: 'diverged', divergence: msg.divergence };
    }
  }
  try {
    const m = parseMessage(msg);
    switch (m.type) {
      case 'run.started':
        return { type: 'run.started', id: msg.id, time: msg.time };
      case 'wait.registered':
        return { type: 'wait.registered', id: msg.id, wait: m.payload };
      case 'budget.escalated':
      case 'budget.exceeded':
      case 'node.completed':
      case 'node.failed':
        return { type: m.type, id: msg.id, payload: m.payload } as SupervisorMessage;
      default:
        return undefined; // observations (its own notes, effects) are for the log
    }
  } catch (e) {
    log.error(`dropped invalid envelope ${msg.id}: ${(e as Error).message}`, { component: 'supervisor', runId: s.runId });
    return undefined;
  }
}

/**
 * The run supervisor: one per run. Its decisions are the pure reducer's (./reducer.ts, over the
 * scheduler's ./scheduler.ts); this actor shell turns what it receives into the reducer's
 * messages, reads what the reducer needs, and performs its effects in order: it spawns one child
 * actor per node execution, arms timers, commits each step (its envelopes, the run row's new
 * state and a checkpoint, together) and ends or passivates the run. Restored from a checkpoint, it
 * re-spawns its live children and hands them their start messages again.
 */
export function fromRunSupervisor(s: RunServices, restored?: CheckpointState): Behaviour<ActorMessage, SupervisorState> {
  const shell = new Shell(s);
  return {
    initialState: restoredState({ def: s.def, replay: s.replay !== undefined }, restored),
    async receive(state, msg, ctx) {
      if (state.sched.finished || state.asleep) return state;
      shell.cause = isEnvelope(msg) ? msg.trace : null;
      const m = toMessage(s, msg);
      return m ? shell.run(state, m, ctx) : state;
    },
    onStop() {
      shell.clearTimers();
    },
    onCrash(err) {
      shell.clearTimers();
      s.crashed(err);
    },
  };
}

/** What the supervisor holds that is not data: its children's and budget actor's refs, its timers. */
class Shell {
  /** The trace context of the message being handled: the step's span links to its sender's. */
  cause: TraceContext | null = null;
  private readonly children = new Map<string, ActorRef<ActorMessage>>();
  private budget: ActorRef<ActorMessage> | undefined;
  private readonly timers = new Set<() => void>();
  /** The wall-clock deadline's timer (one at a time: a deadline moved by a pause is armed again). */
  private deadlineTimer: (() => void) | undefined;

  constructor(private readonly s: RunServices) {}

  /** Reduce a message, then the messages it leads to, each after the effects of the one before. */
  async run(state: SupervisorState, first: SupervisorMessage, ctx: ActorContext<ActorMessage>): Promise<SupervisorState> {
    const queue: SupervisorMessage[] = [first];
    while (queue.length) {
      const r = await this.reduceOne(state, queue.shift()!, ctx);
      state = r.state;
      queue.unshift(...r.then);
    }
    return state;
  }

  /** One reduction: read what it needs, then perform its effects (a strict replay's divergence turns into a `diverged` message). */
  private async reduceOne(
    state: SupervisorState,
    msg: SupervisorMessage,
    ctx: ActorContext<ActorMessage>,
  ): Promise<{ state: SupervisorState; then: SupervisorMessage[] }> {
    const now = this.s.clock.now();
    const signalReads: ReduceContext['signalReads'][number][] = [];
    const forks: string[] = [];
    for (;;) {
      const r = reduce(state, msg, this.context(ctx, now, signalReads, forks));
      if ('need' in r) {
        if (r.need.kind === 'signals') signalReads.push(await this.s.pendingSignals());
        else forks.push(await this.s.fork(r.need.step, r.need.budget, r.need.key));
        continue;
      }
      const diverged = await this.perform(r.effects, ctx);
      if (diverged) return { state: diverged.rollback, then: [{ type: 'diverged', divergence: diverged.divergence }] };
      return { state: r.state, then: r.then };
    }
  }

  private context(ctx: ActorContext<ActorMessage>, now: number, signalReads: ReduceContext['signalReads'], forks: readonly string[]): ReduceContext {
    const { s } = this;
    return {
      now,
      def: s.def,
      input: s.input,
      budget: s.budget,
      self: ctx.path,
      replay: s.replay !== undefined,
      ledger: s.ledgerAt([]),
      idOf: (key) => s.journal.idOf(key),
      recorded: recordedReads(s.journal),
      signalReads,
      forks,
    };
  }

  /** Perform effects in order; stops at a commit a strict replay refused (its divergence and the state to handle it from). */
  private async perform(
    effects: readonly Effect[],
    ctx: ActorContext<ActorMessage>,
  ): Promise<{ divergence: Divergence; rollback: SupervisorState } | undefined> {
    for (const e of effects) {
      if (e.kind === 'commit') {
        const divergence = await this.commit(e.commit, ctx);
        if (divergence) return { divergence, rollback: e.commit.step!.rollback };
      } else {
        this.performSync(e, ctx);
      }
    }
    return undefined;
  }

  private performSync(e: Exclude<Effect, { kind: 'commit' }>, ctx: ActorContext<ActorMessage>): void {
    const { s } = this;
    switch (e.kind) {
      case 'startBudget':
        return this.startBudget(ctx, e.restoring);
      case 'stopBudget':
        return this.budget?.stop();
      case 'spawn': {
        // A node execution runs here, on its run's host: its messages stay in process and ride in the
        // run's commits. In a cluster, runs spread over the nodes through the run queue, and a swarm's
        // branches (the work one run fans out) through the task queue.
        const ref = ctx.spawn(e.name, KINDS[e.agent](s));
        s.register(ref);
        this.children.set(e.node, ref);
        return;
      }
      case 'stopChild': {
        const ref = this.children.get(e.node);
        if (!ref) return;
        ref.stop();
        this.children.delete(e.node);
        if (e.unregister) s.unregister(ref.path);
        return;
      }
      case 'tell':
        return this.children.get(e.node)?.tell(e.envelope);
      case 'armDeadline':
        return this.armDeadline(e.at, ctx);
      case 'armAfter':
        return this.arm(e.timer, e.delayMs, ctx);
      case 'armAt': {
        const delay = e.at - s.clock.now();
        if (e.capped && delay > 2 ** 31 - 1) return; // left to the wake-up at `wakeAt`
        return this.arm(e.timer, delay, ctx);
      }
      case 'clearTimers':
        return this.clearTimers();
      case 'runEnded': {
        const budget = e.error?.code === 'AO_BUDGET_EXCEEDED' ? e.error.details : undefined;
        const events = budget
          ? [{ name: 'budget.exceeded', attributes: Object.fromEntries(Object.entries(budget).map(([k, v]) => [`ao.budget.${k}`, String(v)])) }]
          : [];
        return runEnded(s, e.status, e.error, events, e.usage);
      }
      case 'finished':
        return s.finished();
      case 'passivated':
        return s.passivated();
      case 'log':
        return log.error(e.message, { component: 'supervisor', runId: s.runId });
      default:
        e satisfies never;
    }
  }

  /** The run's budget actor, with the ledger it had when the run is restored. */
  private startBudget(ctx: ActorContext<ActorMessage>, restoring: boolean): void {
    const { s } = this;
    const { wallClockSec: _clock, ...limits } = s.budget;
    const ledger = restoring && s.ledger ? s.ledger : newLedger(limits, nodeLimitsOf(s.def));
    const ref = ctx.spawn(BUDGET_NAME, fromBudget(s, ledger, s.prices));
    s.register(ref);
    this.budget = ref;
  }

  private armDeadline(at: number | undefined, ctx: ActorContext<ActorMessage>): void {
    if (this.deadlineTimer) {
      this.deadlineTimer();
      this.timers.delete(this.deadlineTimer);
      this.deadlineTimer = undefined;
    }
    if (at === undefined) return;
    const cancel = this.s.clock.setTimer(Math.max(0, at - this.s.clock.now()), () => {
      this.timers.delete(cancel);
      ctx.self.tell({ local: 'deadline' });
    });
    this.deadlineTimer = cancel;
    this.timers.add(cancel);
  }

  private arm(timer: TimerMessage, delayMs: number, ctx: ActorContext<ActorMessage>): void {
    const cancel = this.s.clock.setTimer(Math.max(0, delayMs), () => {
      this.timers.delete(cancel);
      ctx.self.tell(timer);
    });
    this.timers.add(cancel);
  }

  clearTimers(): void {
    for (const t of this.timers) t();
  }

  /**
   * Write a commit: a step's in its span, staged (it rides in the commit of the next effect unless
   * it ends the run, sleeps, takes answers or changes its waits; the journal decides), strict
   * unless it ends the run (a recorded replay that no longer reproduces its original opens no wait,
   * does not sleep and starts nothing: the journal refuses such a step, and its divergence is returned).
   */
  private async commit(c: Commit, ctx: ActorContext<ActorMessage>): Promise<Divergence | undefined> {
    const { s } = this;
    // The checkpoint is completed when the commit runs, with the ledger as of its last event.
    const make = (fresh: readonly Envelope[]): CheckpointWrite => {
      const { used, byNode, reserved, soft, usage } = s.ledgerAt(fresh);
      const ledger = { used, byNode, reserved, ...(soft ? { soft } : {}) };
      return { step: c.checkpoint.step, node: c.checkpoint.node, graphVersion: s.def.version, state: { ...c.checkpoint.state, usage, ledger } };
    };
    const checkpoint = { step: c.checkpoint.step, make };
    if (!c.step) {
      await s.journal.append(
        c.notes.map((n) => draft(s, { from: ctx.path, ...n })),
        { patch: c.patch, checkpoint },
      );
      return undefined;
    }
    const span = stepSpan(s, c.checkpoint.step, this.cause);
    const drafts = c.notes.map((n) => draft({ runId: s.runId, trace: span.trace }, { from: ctx.path, ...n }));
    try {
      const written = await s.journal.append(drafts, { patch: c.patch, checkpoint, stage: true, ...(c.step.finished ? {} : { strict: true }) });
      // Answers to questions are read back by the actors that asked when they re-run (after a passivation or crash).
      s.journal.remember(written.filter((e) => e.type === 'wait.resolved'));
    } catch (e) {
      endSpan(span.span, { code: 'AO_INTERNAL', message: (e as Error).message });
      const d = s.journal.replay?.divergence;
      if (isAoError(e) && e.code === 'AO_REPLAY_DIVERGED' && d) return d;
      throw e;
    }
    span.span.setAttribute('ao.decisions', c.step.decisions);
    endSpan(span.span);
    return undefined;
  }
}
