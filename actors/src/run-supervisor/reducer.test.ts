import { describe, it, expect } from 'vitest';
import { graph } from '@ao/graphs';
import type { Budget, GraphDef } from '@ao/graphs';
import type { ActorPath, Envelope, ErrorInfo, SignalRecord } from '@ao/runtime';
import { newLedger } from '../budget/ledger.js';
import { NOTHING_RECORDED } from './recorded-waits.js';
import { reduce, restoredState } from './reducer.js';
import type { Commit, Effect, Note, ReduceContext, Reduction, SupervisorMessage, SupervisorState } from './reducer-types.js';

/**
 * The run supervisor's reducer, called directly: messages in, the effects it asks for out (as
 * scheduler.test.ts does for the scheduler's decisions). No actor, store, bus or clock.
 */

const T0 = Date.parse('2030-01-01T00:00:00.000Z');
const SELF = 'supervisor' as ActorPath;
const boom: ErrorInfo = { code: 'AO_LLM_FAILED', message: 'the model is down' };

function ctxOf(def: GraphDef, o: Partial<ReduceContext> = {}): ReduceContext {
  return {
    now: T0,
    def,
    input: { q: 1 },
    budget: {},
    self: SELF,
    replay: false,
    ledger: newLedger({}),
    idOf: (key) => `id(${key})`,
    recorded: NOTHING_RECORDED,
    signalReads: [],
    forks: [],
    ...o,
  };
}

type Done = Extract<Reduction, { state: unknown }>;

/** Reduce and expect it to decide (not to ask for a read). */
function step(state: SupervisorState, msg: SupervisorMessage, ctx: ReduceContext): Done {
  const r = reduce(state, msg, ctx);
  if ('need' in r) throw new Error(`asked for ${r.need.kind}`);
  return r;
}

const kinds = (r: Done): string[] => r.effects.map((e) => e.kind);
const commitOf = (r: Done): Commit => (r.effects.find((e): e is Extract<Effect, { kind: 'commit' }> => e.kind === 'commit') ?? expect.fail('no commit')).commit;
const notes = (r: Done): Array<Pick<Note, 'type' | 'key'>> => commitOf(r).notes.map((n) => ({ type: n.type, key: n.key }));
const spawned = (r: Done): string[] => r.effects.flatMap((e) => (e.kind === 'spawn' ? [e.name] : []));

const completed = (node: string, id = `c-${node}`, at = { iteration: 1, attempt: 1 }): SupervisorMessage => ({
  type: 'node.completed',
  id,
  payload: { node, ...at, output: { text: node }, usage: {} },
});
const failed = (node: string, error: ErrorInfo, retryable: boolean, at = { iteration: 1, attempt: 1 }): SupervisorMessage => ({
  type: 'node.failed',
  id: `f-${node}-${at.attempt}`,
  payload: { node, ...at, error, retryable, usage: {} },
});

/** A graph of pipeline nodes and unconditional edges given as "from->to". */
function dag(ids: string[], edges: string[]): GraphDef {
  let b = graph('g');
  for (const id of ids) b = b.node(id, { agent: 'pipeline' });
  for (const e of edges) {
    const [from, to] = e.split('->') as [string, string];
    b = b.edge(from, to);
  }
  return b.build();
}

/** A run started: its first reduction. */
function started(def: GraphDef, ctx = ctxOf(def)): Done {
  return step(restoredState(ctx), { type: 'run.started', id: 'start', time: new Date(T0).toISOString() }, ctx);
}

describe('a pipeline step', () => {
  it('starts the entry on run.started: budget actor, child, then one commit with its node.start', () => {
    const def = dag(['a', 'b'], ['a->b']);
    const r = started(def);
    expect(kinds(r)).toEqual(['startBudget', 'spawn', 'commit']);
    expect(r.effects[1]).toEqual({ kind: 'spawn', node: 'a', name: 'a', agent: 'pipeline' });
    const c = commitOf(r);
    expect(c.notes).toEqual([
      {
        to: 'supervisor/a',
        type: 'node.start',
        payload: { node: 'a', iteration: 1, attempt: 1, context: { input: { q: 1 }, outputs: {}, iterations: { a: 1, b: 0 }, upstream: [] } },
        causationId: 'start',
        key: 'supervisor/a/start',
      },
    ]);
    expect(c.checkpoint).toMatchObject({ step: 1, node: null, state: { v: 1, step: 1, live: [{ node: 'a', name: 'a', startId: 'id(supervisor/a/start)' }] } });
    expect(c.step).toMatchObject({ decisions: 'start', finished: false });
    expect(r.state).toMatchObject({ step: 1, children: [{ node: 'a', name: 'a', path: 'supervisor/a' }] });
    expect(r.then).toEqual([{ type: 'committed' }]);
  });

  it('on a completion stops its child, starts the next node, and the checkpoint refers to the output', () => {
    const def = dag(['a', 'b'], ['a->b']);
    const r = step(started(def).state, completed('a'), ctxOf(def));
    expect(kinds(r)).toEqual(['stopChild', 'spawn', 'commit']);
    expect(r.effects[0]).toEqual({ kind: 'stopChild', node: 'a', unregister: true });
    expect(notes(r)).toEqual([{ type: 'node.start', key: 'supervisor/b/start' }]);
    const c = commitOf(r);
    expect(c.checkpoint.node).toBe('a');
    expect(c.checkpoint.state.$refs).toEqual([{ path: ['sched', 'outputs', 'a'], id: 'c-a', field: ['output'] }]);
    expect(c.checkpoint.state.sched.outputs).toEqual({});
    expect(c.notes[0]!.payload).toMatchObject({ context: { outputs: { a: { text: 'a' } }, upstream: ['a'] } });
  });

  it('ends the run after the last node: run.finished, telemetry, children and budget stopped, timers cleared', () => {
    const def = dag(['a', 'b'], ['a->b']);
    let s = started(def).state;
    s = step(s, completed('a'), ctxOf(def)).state;
    const r = step(s, completed('b'), ctxOf(def));
    expect(kinds(r)).toEqual(['stopChild', 'commit', 'runEnded', 'stopBudget', 'clearTimers', 'finished']);
    expect(notes(r)).toEqual([{ type: 'run.finished', key: 'run.finished' }]);
    expect(commitOf(r).patch).toMatchObject({
      status: 'succeeded',
      output: { b: { text: 'b' } },
      error: null,
      finishedAt: '2030-01-01T00:00:00.000Z',
      releaseLease: true,
      waits: [],
      wakeAt: null,
    });
    expect(commitOf(r).step?.finished).toBe(true);
    expect(r.state.sched.finished).toBe(true);
    expect(r.then).toEqual([]);
  });

  it('ignores a stale or duplicate completion: no effect at all', () => {
    const def = dag(['a', 'b'], ['a->b']);
    const s = step(started(def).state, completed('a'), ctxOf(def)).state;
    const r = step(s, completed('a', 'c-a-again'), ctxOf(def));
    expect(r.effects).toEqual([]);
    expect(r.state).toEqual(s);
  });

  it('handles nothing once the run has finished', () => {
    const def = dag(['a'], []);
    const s = step(started(def).state, completed('a'), ctxOf(def)).state;
    expect(step(s, { type: 'cancel', reason: 'late' }, ctxOf(def))).toEqual({ state: s, effects: [], then: [] });
  });
});

describe('a swarm join', () => {
  it('starts the join only when both branches completed, with both upstream', () => {
    const def = dag(['a', 'b', 'c'], ['a->c', 'b->c']);
    const r0 = started(def);
    expect(spawned(r0)).toEqual(['a', 'b']);
    const r1 = step(r0.state, completed('a'), ctxOf(def));
    expect(kinds(r1)).toEqual(['stopChild', 'commit']);
    expect(notes(r1)).toEqual([]);
    const r2 = step(r1.state, completed('b'), ctxOf(def));
    expect(spawned(r2)).toEqual(['c']);
    expect(commitOf(r2).notes[0]!.payload).toMatchObject({ node: 'c', context: { upstream: ['a', 'b'] } });
  });
});

describe('retries', () => {
  const def = graph('r')
    .node('a', { agent: 'pipeline', retry: { attempts: 2, backoffMs: 100, maxBackoffMs: 1000 } })
    .build() as GraphDef;

  it('schedules a retry with its timer, then starts the next attempt under its own name', () => {
    const r1 = step(started(def).state, failed('a', boom, true), ctxOf(def));
    expect(kinds(r1)).toEqual(['stopChild', 'armAfter', 'commit']);
    expect(r1.effects[1]).toEqual({ kind: 'armAfter', timer: { local: 'retry', node: 'a' }, delayMs: 100 });
    expect(notes(r1)).toEqual([{ type: 'node.retry_scheduled', key: 'retry/a/1.2' }]);
    const r2 = step(r1.state, { type: 'retry', node: 'a' }, ctxOf(def, { now: T0 + 100 }));
    expect(r2.effects[0]).toEqual({ kind: 'spawn', node: 'a', name: 'a@1.2', agent: 'pipeline' });
    expect(commitOf(r2).notes[0]).toMatchObject({ to: 'supervisor/a@1.2', type: 'node.start', causationId: null, key: 'supervisor/a@1.2/start' });
    expect(commitOf(r2).checkpoint.node).toBe('a');
  });

  it('fails the run after a non-retryable failure', () => {
    const r = step(started(def).state, failed('a', boom, false), ctxOf(def));
    expect(commitOf(r).patch).toMatchObject({ status: 'failed', error: { code: 'AO_NODE_FAILED' } });
    expect(kinds(r)).toContain('finished');
  });

  it('parks the run when an effect outcome is unknown: one commit under the run trace, no step', () => {
    const r = step(started(def).state, failed('a', { code: 'AO_EFFECT_UNKNOWN_OUTCOME', message: '?', node: 'a' }, false), ctxOf(def));
    expect(kinds(r)).toEqual(['stopChild', 'commit', 'finished']);
    const c = commitOf(r);
    expect(c.step).toBeUndefined();
    expect(c.notes).toMatchObject([{ type: 'run.parked', key: 'run.parked', causationId: 'f-a-1' }]);
    expect(c.patch).toMatchObject({ status: 'waiting', releaseLease: true });
    expect(c.checkpoint.node).toBe('a');
  });
});

describe('budget stops, deadline, cancel, divergence', () => {
  const def = dag(['a', 'b'], []);
  const budget: Budget = { wallClockSec: 10 };

  it('ends budget_exceeded on budget.exceeded, stopping the running children first', () => {
    const s = started(def).state;
    const msg: SupervisorMessage = {
      type: 'budget.exceeded',
      id: 'bx',
      payload: { limit: 'tokens', scope: 'run', value: 10, used: 12, actor: 'supervisor/a' },
    };
    const r = step(s, msg, ctxOf(def));
    expect(kinds(r)).toEqual(['stopChild', 'stopChild', 'commit', 'runEnded', 'stopBudget', 'clearTimers', 'finished']);
    expect(commitOf(r).patch).toMatchObject({
      status: 'budget_exceeded',
      error: { code: 'AO_BUDGET_EXCEEDED', details: { limit: 'tokens', used: 12, actor: 'supervisor/a' } },
    });
    expect(commitOf(r).notes[0]!.causationId).toBe('bx');
  });

  it('arms the deadline from the run start time, and ends budget_exceeded when it fires', () => {
    const ctx = ctxOf(def, { budget });
    const r0 = started(def, ctx);
    expect(r0.effects).toContainEqual({ kind: 'armDeadline', at: T0 + 10_000 });
    expect(r0.state.deadline).toBe(T0 + 10_000);
    const r = step(r0.state, { type: 'deadline' }, ctxOf(def, { budget, now: T0 + 10_500 }));
    expect(commitOf(r).patch).toMatchObject({ status: 'budget_exceeded', error: { details: { limit: 'wallClockSec', value: 10, used: 10.5 } } });
  });

  it('ends cancelled on cancel, with the reason', () => {
    const r = step(started(def).state, { type: 'cancel', reason: 'no longer needed' }, ctxOf(def));
    expect(commitOf(r).patch).toMatchObject({ status: 'cancelled', error: { code: 'AO_RUN_CANCELLED', message: 'no longer needed' } });
  });

  it('ends failed with the divergence of a strict replay', () => {
    const divergence = { step: 2, actor: 'supervisor', diff: ['payload.prompt changed'] } as unknown as Extract<
      SupervisorMessage,
      { type: 'diverged' }
    >['divergence'];
    const r = step(started(def).state, { type: 'diverged', divergence }, ctxOf(def));
    expect(commitOf(r).patch).toMatchObject({ status: 'failed', error: { code: 'AO_REPLAY_DIVERGED', details: divergence } });
    expect(notes(r)).toEqual([{ type: 'run.finished', key: 'run.finished' }]);
  });

  it('hands the state a step started from, with the children it spawned, for a divergence at its commit', () => {
    const two = dag(['a', 'b'], ['a->b']);
    const s = started(two).state;
    const r = step(s, completed('a'), ctxOf(two));
    expect(commitOf(r).step?.rollback).toMatchObject({ step: 1, children: [{ node: 'b' }], outputAt: { a: 'c-a' } });
  });
});

describe('waits and wakes', () => {
  const def = graph('w')
    .node('a', { agent: 'pipeline' })
    .node('gate', { agent: 'pipeline', approval: { prompt: 'Go?', timeoutSec: 60 } })
    .edge('a', 'gate')
    .build() as GraphDef;
  const signal = (payload: unknown): SignalRecord => ({ id: 'sig1', runId: 'r', node: 'gate', waitId: null, payload, createdAt: '', consumedAt: null });

  /** The run with `a` done, asleep at the approval before `gate`. */
  function asleep(): Done {
    const s = started(def).state;
    return step(s, completed('a'), ctxOf(def, { signalReads: [[]] }));
  }

  it('asks for the pending answers before it sleeps at a wait', () => {
    const s = started(def).state;
    expect(reduce(s, completed('a'), ctxOf(def))).toEqual({ need: { kind: 'signals' } });
  });

  it('sleeps when nothing else can happen: the wait opened, its timer armed, run.waiting, then passivated', () => {
    const r = asleep();
    expect(kinds(r)).toEqual(['stopChild', 'armAt', 'commit', 'stopBudget', 'clearTimers', 'passivated']);
    expect(r.effects[1]).toEqual({ kind: 'armAt', timer: { local: 'waitTimeout', wait: 'approval/gate/1' }, at: T0 + 60_000, capped: true });
    expect(notes(r)).toEqual([
      { type: 'wait.opened', key: 'wait/approval/gate/1/opened' },
      { type: 'run.waiting', key: 'waiting/2' },
    ]);
    expect(commitOf(r).patch).toMatchObject({ status: 'waiting', wakeAt: '2030-01-01T00:01:00.000Z', releaseLease: true });
    expect(r.state).toMatchObject({ asleep: true, pausedAt: T0 });
    expect(commitOf(r).checkpoint.state.pausedAt).toBe(T0);
  });

  it('takes an answer that came early in the step that opens the wait: no sleep', () => {
    const s = started(def).state;
    const r = step(s, completed('a'), ctxOf(def, { signalReads: [[signal({ approved: true })]] }));
    expect(notes(r)).toEqual([
      { type: 'wait.opened', key: 'wait/approval/gate/1/opened' },
      { type: 'wait.resolved', key: 'approval/gate/1/resolved' },
      { type: 'node.start', key: 'supervisor/gate/start' },
    ]);
    expect(commitOf(r).patch.consumeSignals).toEqual(['sig1']);
    expect(r.state.asleep).toBeUndefined();
  });

  it('wakes restored from its checkpoint with the answer: run.resumed with the pause, then the node starts, then the children', () => {
    const cp = { ...commitOf(asleep()).checkpoint.state, usage: newLedger({}).usage };
    const state = restoredState(ctxOf(def), cp);
    const ctx = ctxOf(def, { now: T0 + 5_000 });
    expect(reduce(state, { type: 'restore', starts: [] }, ctx)).toEqual({ need: { kind: 'signals' } });
    const r = step(state, { type: 'restore', starts: [] }, { ...ctx, signalReads: [[signal({ approved: true })]] });
    expect(kinds(r).slice(0, 3)).toEqual(['startBudget', 'armDeadline', 'spawn']);
    expect(notes(r)).toEqual([
      { type: 'run.resumed', key: 'resumed/3' },
      { type: 'wait.resolved', key: 'approval/gate/1/resolved' },
      { type: 'node.start', key: 'supervisor/gate/start' },
    ]);
    expect(commitOf(r).notes[0]!.payload).toEqual({ pausedMs: 5_000, wallClockPaused: true });
    expect(commitOf(r).patch).toMatchObject({ status: 'running', consumeSignals: ['sig1'] });
    expect(r.then).toEqual([{ type: 'committed' }, { type: 'restoreChildren', starts: [] }]);
    expect(r.state.pausedAt).toBeUndefined();
  });

  it('times out a wait: the approval is rejected as the node says, its node skipped', () => {
    const s = started(def).state;
    const open = step(s, completed('a'), ctxOf(def, { signalReads: [[signal({ bad: 1 }) /* fits no schema: dropped */]] }));
    expect(kinds(open)).toContain('log');
    const r = step({ ...open.state, asleep: false }, { type: 'waitTimeout', wait: 'approval/gate/1' }, ctxOf(def, { now: T0 + 60_000 }));
    expect(notes(r).map((n) => n.type)).toEqual(['wait.resolved', 'node.skipped', 'run.finished']);
    expect(notes(r)[1]!.key).toBe('skip/gate/timeout/approval/gate/1');
  });
});

describe('restore', () => {
  const def = dag(['a', 'b'], []);

  it('re-spawns the live children after the first half, and hands them their start messages', () => {
    const first = started(def);
    const cp = { ...commitOf(first).checkpoint.state, usage: newLedger({}).usage };
    const state = restoredState(ctxOf(def), cp);
    expect(state.restore).toEqual([
      { node: 'a', name: 'a', startId: 'id(supervisor/a/start)' },
      { node: 'b', name: 'b', startId: 'id(supervisor/b/start)' },
    ]);
    const starts = [{ id: 'id(supervisor/a/start)' } as Envelope];
    const r1 = step(state, { type: 'restore', starts }, ctxOf(def));
    expect(kinds(r1)).toEqual(['startBudget', 'armDeadline']);
    expect(r1.then).toEqual([{ type: 'restoreChildren', starts }]);
    const r2 = step(r1.state, r1.then[0]!, ctxOf(def));
    expect(kinds(r2)).toEqual(['spawn', 'tell', 'spawn']);
    expect(r2.effects[1]).toEqual({ kind: 'tell', node: 'a', envelope: starts[0] });
    expect(r2.state.restore).toBeUndefined();
    expect(r2.state.children.map((c) => c.path)).toEqual(['supervisor/a', 'supervisor/b']);
  });
});

describe('purity', () => {
  it('does not change the state it is given, and gives the same answer twice', () => {
    const def = dag(['a', 'b'], ['a->b']);
    const s = started(def).state;
    const before = structuredClone(s);
    const once = reduce(s, completed('a'), ctxOf(def));
    const twice = reduce(s, completed('a'), ctxOf(def));
    expect(s).toEqual(before);
    expect(JSON.stringify(once)).toBe(JSON.stringify(twice));
  });

  it('asks for a fork before it ends a run a person forked at a soft limit, and names it in the end', () => {
    const def = dag(['a'], []);
    const ctx = ctxOf(def, { budget: { tokens: 100, soft: { tokens: 50 } } as Budget, signalReads: [[]] });
    const s = started(def, ctx).state;
    const esc: SupervisorMessage = {
      type: 'budget.escalated',
      id: 'esc',
      payload: { key: 'k', node: 'a', actor: 'supervisor/a', limit: 'tokens', value: 50, used: 51 },
    };
    const fork: SignalRecord = {
      id: 's',
      runId: 'r',
      node: 'a',
      waitId: 'budget/tokens/50',
      payload: { decision: 'fork', budget: { tokens: 500 } },
      createdAt: '',
      consumedAt: null,
    };
    // The answer is in when the wait opens: taken at once, and the fork asked for before the run ends.
    const r = reduce(s, esc, { ...ctx, signalReads: [[fork]] });
    expect(r).toEqual({ need: { kind: 'fork', step: 1, budget: { tokens: 500 }, key: 'fork/budget/tokens/50' } });
    const done = step(s, esc, { ...ctx, signalReads: [[fork]], forks: ['fork-1'] });
    expect(commitOf(done).patch).toMatchObject({ status: 'budget_exceeded', error: { details: { decision: 'fork', forkedTo: 'fork-1' } } });
  });
});
