import { typed } from '@ao/runtime';
import type { ActorPath, EnvelopeType, ErrorInfo, Payload, RunPatch, SignalRecord, WaitInfo } from '@ao/runtime';
import { BUDGET_PATH } from '../effects/effects.js';
import { raise } from '../budget/ledger.js';
import { executionName } from '../services.js';
import { answer, chain, grantedRaise } from './answers.js';
import { fieldOf } from './fields.js';
import type { CheckpointState } from './checkpoint.js';
import { quiescent, waitResolved } from './scheduler.js';
import type { Decision, Step } from './scheduler.js';
import type { ChildInfo, Commit, Effect, Need, Note, ReduceContext, SupervisorMessage, SupervisorState, Wake } from './reducer-types.js';

/** A read the reduction cannot go on without: thrown, caught by `reduce`, returned as its `need`. */
export class NeedRead {
  constructor(readonly need: Need) {}
}

/** One reduction in progress: its context, the effects and follow-up messages it collects, the reads it used. */
export class Turn {
  readonly effects: Effect[] = [];
  readonly then: SupervisorMessage[] = [];
  private signalsRead = 0;
  private forksMade = 0;

  constructor(readonly ctx: ReduceContext) {}

  /** The time of the reduction as an ISO 8601 timestamp. */
  get iso(): string {
    return new Date(this.ctx.now).toISOString();
  }

  /** The next read of the pending answers (asked for if not read yet). */
  signals(): readonly SignalRecord[] {
    const read = this.ctx.signalReads[this.signalsRead];
    if (!read) throw new NeedRead({ kind: 'signals' });
    this.signalsRead += 1;
    return read;
  }

  /** The next fork's id (asked for if not made yet). */
  fork(step: number, budget: Record<string, unknown>, key: string): string {
    const id = this.ctx.forks[this.forksMade];
    if (id === undefined) throw new NeedRead({ kind: 'fork', step, budget, key });
    this.forksMade += 1;
    return id;
  }

  emit(...effects: Effect[]): void {
    this.effects.push(...effects);
  }
}

/** How a step was caused: what its envelopes and checkpoint say about it. */
export interface StepOptions {
  /** The envelope that caused it (null for timers, pokes and the engine's calls). */
  causationId?: string | null;
  /** The node its checkpoint names. */
  node?: string | null;
  /** The key its skips are written under (default: the causation id, or `none`). */
  causeKey?: string;
  /** Signals already consumed by it. */
  consumed?: string[];
  /** Commit even if nothing changed. */
  force?: boolean;
  /** It wakes a passivated run. */
  wake?: Wake;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A child's actor path, under the supervisor's. */
export const childPath = (self: ActorPath, name: string): ActorPath => `${self}/${name}` as ActorPath;

/** Stop a child (its effect, and the state without it). */
export function stopChild(turn: Turn, children: ChildInfo[], node: string): ChildInfo[] {
  if (!children.some((c) => c.node === node)) return children;
  turn.emit({ kind: 'stopChild', node, unregister: true });
  return children.filter((c) => c.node !== node);
}

/** Spawn a child for a node execution. */
export function spawnChild(turn: Turn, children: ChildInfo[], node: string, name: string): ChildInfo[] {
  turn.emit({ kind: 'spawn', node, name, agent: turn.ctx.def.node(node)!.agent });
  const child: ChildInfo = { node, name, path: childPath(turn.ctx.self, name) };
  return children.some((c) => c.node === node) ? children.map((c) => (c.node === node ? child : c)) : [...children, child];
}

/** Arm a wait's timeout (a recorded replay takes its original's timeouts at the steps it took them). */
export function armWait(turn: Turn, w: WaitInfo): void {
  if (w.timeoutAt === undefined || turn.ctx.recorded.servesBySteps) return;
  turn.emit({ kind: 'armAt', timer: { local: 'waitTimeout', wait: w.id }, at: w.timeoutAt, capped: true });
}

/**
 * About to wait for a person: answers that are already in (they came early, or while the wait was
 * being opened) are taken now rather than after a passivation. A recorded replay takes those its
 * original took in this step, from its log.
 */
function takeAnswersIn(turn: Turn, state: SupervisorState, first: Step, consumed: string[]): { step: Step; consumed: string[] } {
  const { ctx } = turn;
  let step = first;
  if (!quiescent(step.state)) return { step, consumed };
  if (ctx.recorded.servesBySteps) {
    for (const a of ctx.recorded.answersAt(state.step + 1, new Set(Object.keys(step.state.waits ?? {})))) {
      step = chain(step, (st) => waitResolved(ctx.def, st, a.wait, a.outcome, turn.iso));
    }
    return { step, consumed };
  }
  const taken = new Set(consumed);
  const more = answer(
    ctx.def,
    step.state,
    turn.signals().filter((sig) => !taken.has(sig.id)),
    turn.iso,
  );
  for (const message of more.dropped) turn.emit({ kind: 'log', message });
  if (!more.consumed.length) return { step, consumed };
  return { step: chain(step, () => more.step), consumed: [...consumed, ...more.consumed] };
}

/**
 * A person forked the run at a soft budget limit: the fork (from the latest step, with the new
 * budget) exists before this run ends, and its end names it.
 */
function withForks(turn: Turn, state: SupervisorState, step: Step): Step {
  for (const d of step.decisions) {
    if (d.kind !== 'resolved' || d.wait.kind !== 'budget' || d.outcome.kind !== 'signal') continue;
    if (fieldOf(d.outcome.payload, 'decision') !== 'fork') continue;
    const budget = fieldOf(d.outcome.payload, 'budget');
    const forkedTo = turn.fork(state.step, isRecord(budget) ? budget : {}, `fork/${d.wait.id}`);
    step = {
      ...step,
      decisions: step.decisions.map((x) => (x.kind === 'finish' && x.error ? { ...x, error: { ...x.error, details: { ...x.error.details, forkedTo } } } : x)),
    };
  }
  return step;
}

/** The supervisor's part of a checkpoint (see `CheckpointState`; the shell adds the ledger and usage as of the commit). */
export function snapshotState(ctx: ReduceContext, state: SupervisorState): Omit<CheckpointState, 'usage'> {
  const outputAt = state.outputAt ?? {};
  const held = Object.entries(outputAt).filter(([node]) => state.sched.outputs[node] !== undefined);
  const sched = held.length
    ? { ...state.sched, outputs: Object.fromEntries(Object.entries(state.sched.outputs).filter(([node]) => !outputAt[node])) }
    : state.sched;
  return {
    v: 1,
    step: state.step,
    sched,
    // Node outputs are held by their `node.completed` envelopes: the checkpoint refers to them (issue 22).
    ...(held.length ? { $refs: held.map(([node, id]) => ({ path: ['sched', 'outputs', node], id, field: ['output'] })) } : {}),
    ...(state.deadline !== undefined ? { deadline: state.deadline } : {}),
    // Children not re-spawned yet (a restored run settling its waits first) are live all the same.
    live: [...state.children.map((c) => ({ node: c.node, name: c.name, startId: ctx.idOf(`${c.path}/start`) })), ...(state.restore ?? [])],
    ...(state.pausedAt !== undefined ? { pausedAt: state.pausedAt } : {}),
  };
}

/** What writing a step's decisions produced besides its notes. */
interface Written {
  finished: boolean;
  ended?: { status: string; error?: ErrorInfo };
}

/** The node.start envelope of a start decision (the child is spawned first: the envelope goes to its path). */
function startNote(turn: Turn, next: SupervisorState, d: Extract<Decision, { kind: 'start' }>, causationId: string | null): Note {
  const name = executionName(d.node, d.iteration, d.attempt);
  next.children = spawnChild(turn, next.children, d.node, name);
  const s = next.sched;
  const context = {
    input: turn.ctx.input,
    outputs: s.outputs,
    iterations: Object.fromEntries(Object.entries(s.nodes).map(([id, n]) => [id, n.iteration])),
    upstream: d.upstream,
    ...(s.approvals?.[d.node] !== undefined ? { approval: s.approvals[d.node] } : {}),
    ...(s.approvals && Object.keys(s.approvals).length ? { approvals: s.approvals } : {}),
  };
  const to = childPath(turn.ctx.self, name);
  return { to, type: 'node.start', payload: { node: d.node, iteration: d.iteration, attempt: d.attempt, context }, causationId, key: `${to}/start` };
}

/** A wait's end: the raise of a granted budget (it commits with the resolution), then the resolution. */
function resolvedNotes(turn: Turn, d: Extract<Decision, { kind: 'resolved' }>, causationId: string | null): Note[] {
  const { ctx } = turn;
  const w = d.wait;
  const notes: Note[] = [];
  // A question's answer goes to the actor that asked, as the reply to its registration.
  const to = w.kind === 'interrupt' && w.actor ? (w.actor as ActorPath) : ctx.self;
  const cause = w.kind === 'interrupt' ? ctx.idOf(`${w.id}/wait`) : causationId;
  const grant = w.kind === 'budget' && d.outcome.kind === 'signal' && fieldOf(d.outcome.payload, 'decision') === 'grant' ? d.outcome.payload : undefined;
  if (grant !== undefined) {
    // The budget actor applies the raise and decides the calls it held.
    const soft = raise(ctx.ledger, grantedRaise(grant, w, ctx.budget)).soft ?? {};
    notes.push({ to: BUDGET_PATH, type: 'budget.raised', payload: { wait: w.id, soft }, causationId, key: `raised/${w.id}` });
  }
  const payload = { wait: w.id, node: w.node, kind: w.kind, outcome: d.outcome, ...(d.approved !== undefined ? { approved: d.approved } : {}) };
  notes.push({ to, type: 'wait.resolved', payload, causationId: cause, key: `${w.id}/resolved` });
  return notes;
}

/** Write a step's decisions as notes and effects (children spawned and stopped, timers armed). */
function writeDecisions(
  turn: Turn,
  next: SupervisorState,
  step: Step,
  notes: Note[],
  patch: RunPatch,
  o: { causationId: string | null; causeKey: string },
): Written {
  const { self } = turn.ctx;
  const { causationId, causeKey } = o;
  const note = <T extends EnvelopeType>(to: ActorPath, type: T, payload: Payload<T>, key: string): void => {
    notes.push({ to, ...typed(type, payload), causationId, key });
  };
  const out: Written = { finished: false };
  for (const d of step.decisions) {
    switch (d.kind) {
      case 'start':
        notes.push(startNote(turn, next, d, causationId));
        break;
      case 'skip':
        note(self, 'node.skipped', { node: d.node, reason: d.reason }, `skip/${d.node}/${causeKey}`);
        break;
      case 'loop':
        note(self, 'loop.iterated', { from: d.from, to: d.to, iteration: d.iteration, reset: d.reset }, `loop/${d.to}/${d.iteration}`);
        break;
      case 'retry':
        note(
          self,
          'node.retry_scheduled',
          { node: d.node, attempt: d.attempt, delayMs: d.delayMs, error: d.error },
          `retry/${d.node}/${step.state.nodes[d.node]!.iteration}.${d.attempt}`,
        );
        turn.emit({ kind: 'armAfter', timer: { local: 'retry', node: d.node }, delayMs: d.delayMs });
        break;
      case 'wait':
        note(self, 'wait.opened', d.wait, `wait/${d.wait.id}/opened`);
        armWait(turn, d.wait);
        break;
      case 'resolved':
        notes.push(...resolvedNotes(turn, d, causationId));
        break;
      case 'finish': {
        for (const id of d.cancel) next.children = stopChild(turn, next.children, id);
        out.finished = true;
        out.ended = { status: d.status, ...(d.error ? { error: d.error } : {}) };
        const usage = turn.ctx.ledger.usage;
        note(
          self,
          'run.finished',
          { status: d.status, ...(d.output ? { output: d.output } : {}), ...(d.error ? { error: d.error } : {}), usage },
          'run.finished',
        );
        Object.assign(patch, { status: d.status, output: d.output ?? null, error: d.error ?? null, finishedAt: turn.iso, releaseLease: true });
        break;
      }
      default:
        d satisfies never;
    }
  }
  return out;
}

/** How the step leaves the run: finished, asleep (passivated), sleeping but woken at once (a recorded replay), or going on. */
type Outcome = 'finished' | 'asleep' | 'woke' | 'running';

/** Whether the run sleeps after the step, and the patch and notes that says so. */
function settleSleep(
  turn: Turn,
  state: SupervisorState,
  next: SupervisorState,
  written: Written,
  out: { notes: Note[]; patch: RunPatch; causationId: string | null },
): { outcome: Outcome; woke?: ReturnType<ReduceContext['recorded']['wake']> } {
  const { ctx } = turn;
  const { notes, patch, causationId } = out;
  const waits = Object.values(next.sched.waits ?? {});
  // Not while a granted call is in flight (its actor is not blocked on a person).
  const sleeping = !written.finished && quiescent(next.sched) && !Object.keys(ctx.ledger.reserved).length;
  // A recorded replay sleeps only where its original did not wake: it is woken with the original's answers at once.
  const woke = sleeping
    ? ctx.recorded.wake(
        next.step + 1,
        waits.map((w) => w.id),
      )
    : undefined;
  const waiting: Note = { to: ctx.self, type: 'run.waiting', payload: { waits }, causationId, key: `waiting/${next.step}` };
  if (sleeping && woke) {
    next.pausedAt = ctx.now;
    notes.push(waiting);
    patch.waits = waits;
    return { outcome: 'woke', woke };
  }
  if (sleeping) {
    // Nothing can happen until a person answers: checkpoint and stop everything. Actors blocked
    // on a question are in the checkpoint as live; they re-run from their start when it is answered.
    next.pausedAt = ctx.now;
    next.asleep = true;
    // Woken at the earliest timeout, or when the wall clock runs out if a wait counts it.
    const counting = waits.some((w) => w.countWallClock) && next.deadline !== undefined ? next.deadline : Infinity;
    const wakeAt = Math.min(counting, ...waits.map((w) => w.timeoutAt ?? Infinity));
    notes.push(waiting);
    Object.assign(patch, { status: 'waiting', waits, wakeAt: Number.isFinite(wakeAt) ? new Date(wakeAt).toISOString() : null, releaseLease: true });
    return { outcome: 'asleep' };
  }
  if (!written.finished && (waits.length || state.sched.waits)) patch.waits = waits;
  else if (written.finished) Object.assign(patch, { waits: [], wakeAt: null });
  return { outcome: written.finished ? 'finished' : 'running' };
}

/** After the commit: end the run, passivate it, or go on (a recorded replay may take its original's next step). */
function afterCommit(turn: Turn, next: SupervisorState, outcome: Outcome, woke: ReturnType<ReduceContext['recorded']['wake']>): void {
  if (outcome === 'finished') {
    for (const c of next.children) turn.emit({ kind: 'stopChild', node: c.node, unregister: true });
    next.children = [];
    turn.emit({ kind: 'stopBudget' }, { kind: 'clearTimers' }, { kind: 'finished' });
  } else if (outcome === 'asleep') {
    for (const c of next.children) turn.emit({ kind: 'stopChild', node: c.node, unregister: false });
    next.children = [];
    turn.emit({ kind: 'stopBudget' }, { kind: 'clearTimers' }, { kind: 'passivated' });
  } else {
    turn.then.push({ type: 'committed', ...(woke ? { woke } : {}) });
  }
}

/**
 * One step of the run: the scheduler's decisions (with the answers already in, and forks made),
 * the envelopes they write, the run row's patch and the checkpoint, committed together; then the
 * run ends, sleeps, or goes on.
 */
export function applyStep(turn: Turn, state: SupervisorState, first: Step, o: StepOptions = {}): SupervisorState {
  const { ctx } = turn;
  const causationId = o.causationId ?? null;
  const causeKey = o.causeKey ?? causationId ?? 'none';
  const taken = takeAnswersIn(turn, state, first, o.consumed ?? []);
  const consumed = taken.consumed;
  if (!taken.step.decisions.length && taken.step.state === state.sched && !consumed.length && !o.force && !o.wake) return state;
  // A recorded replay's waits open at the times its original's did.
  const step = withForks(turn, state, ctx.recorded.withTimes(state.sched, taken.step, state.step + 1));
  const next: SupervisorState = { ...state, sched: step.state, step: state.step + 1 };
  const notes: Note[] = [];
  // The run's usage is its settlements' (nodes that failed or were cut off count too).
  const patch: RunPatch = { nodes: step.state.nodes, usage: ctx.ledger.usage, ...(consumed.length ? { consumeSignals: consumed } : {}) };
  if (o.wake) {
    patch.status = 'running';
    notes.push({
      to: ctx.self,
      type: 'run.resumed',
      payload: { pausedMs: o.wake.pausedMs, wallClockPaused: o.wake.paused },
      causationId,
      key: `resumed/${next.step}`,
    });
  }
  const written = writeDecisions(turn, next, step, notes, patch, { causationId, causeKey });
  const { outcome, woke } = settleSleep(turn, state, next, written, { notes, patch, causationId });
  const commit: Commit = {
    notes,
    patch,
    checkpoint: { step: next.step, node: o.node ?? null, state: snapshotState(ctx, next) },
    // A divergence is handled from the state this step started from, with the children it spawned.
    step: { decisions: step.decisions.map((d) => d.kind).join(','), finished: written.finished, rollback: { ...state, children: next.children } },
  };
  turn.emit({ kind: 'commit', commit });
  if (written.ended)
    turn.emit({ kind: 'runEnded', status: written.ended.status, ...(written.ended.error ? { error: written.ended.error } : {}), usage: ctx.ledger.usage });
  afterCommit(turn, next, outcome, woke);
  return next;
}
