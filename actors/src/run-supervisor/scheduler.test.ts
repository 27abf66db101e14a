import { describe, it, expect } from 'vitest';
import { draftCritique, graph, MAX_DRAFTS } from '@ao/graphs';
import type { GraphDef, NodeOutput } from '@ao/graphs';
import type { ErrorInfo, WaitInfo } from '@ao/runtime';
import { backoff, begin, initialState, nodeFailed, nodeSucceeded, retryDue, waitOpened, waitResolved } from './scheduler.js';
import type { Decision, SchedulerState, Step } from './scheduler.js';

const NOW = '2030-01-01T00:00:00.000Z';
const LATER = '2030-01-01T00:00:05.000Z';
const out = (text: string): NodeOutput => ({ text });
const boom: ErrorInfo = { code: 'AO_LLM_FAILED', message: 'the model is down' };

/** Ids of the nodes a step starts, in order. */
const started = (s: Step): string[] => s.decisions.filter((d) => d.kind === 'start').map((d) => d.node);
const skipped = (s: Step): string[] => s.decisions.filter((d) => d.kind === 'skip').map((d) => d.node);
const finishOf = (s: Step): Extract<Decision, { kind: 'finish' }> | undefined =>
  s.decisions.find((d): d is Extract<Decision, { kind: 'finish' }> => d.kind === 'finish');
const statuses = (s: SchedulerState): Record<string, string> => Object.fromEntries(Object.entries(s.nodes).map(([id, n]) => [id, n.status]));

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

/** Begin a run and return its first step. */
const started0 = <I>(def: GraphDef<I>): Step => begin(def, initialState(def), NOW);
/** Let `node` succeed with output text equal to its id. */
const ok = <I>(def: GraphDef<I>, s: Step, node: string, input?: I, text = node): Step => nodeSucceeded(def, s.state, input as I, node, out(text), NOW);

describe('initialState and begin', () => {
  it('puts every node in pending with no iteration and no edge resolved', () => {
    const def = dag(['a', 'b'], ['a->b']);
    const s = initialState(def);
    expect(s).toEqual({
      nodes: { a: { status: 'pending', iteration: 0, attempt: 0 }, b: { status: 'pending', iteration: 0, attempt: 0 } },
      edges: ['unresolved'],
      deferred: [],
      outputs: {},
      finished: false,
    });
  });

  it('starts the entry nodes first, on iteration 1 attempt 1, and nothing else', () => {
    const def = dag(['a', 'x', 'b'], ['a->b', 'x->b']);
    const prev = initialState(def);
    const s = begin(def, prev, NOW);
    expect(s.decisions).toEqual([
      { kind: 'start', node: 'a', iteration: 1, attempt: 1, upstream: [] },
      { kind: 'start', node: 'x', iteration: 1, attempt: 1, upstream: [] },
    ]);
    expect(s.state.nodes.a).toEqual({ status: 'running', iteration: 1, attempt: 1, startedAt: NOW });
    expect(s.state.nodes.b?.status).toBe('pending');
    expect(prev.nodes.a?.status).toBe('pending'); // the previous state is not mutated
  });
});

describe('forward edges', () => {
  it('starts a linear chain one node at a time, each building on its predecessor', () => {
    const def = dag(['a', 'b', 'c'], ['a->b', 'b->c']);
    let s = started0(def);
    expect(started(s)).toEqual(['a']);
    s = ok(def, s, 'a');
    expect(s.decisions).toEqual([{ kind: 'start', node: 'b', iteration: 1, attempt: 1, upstream: ['a'] }]);
    expect(statuses(s.state)).toEqual({ a: 'succeeded', b: 'running', c: 'pending' });
    s = ok(def, s, 'b');
    expect(s.decisions).toEqual([{ kind: 'start', node: 'c', iteration: 1, attempt: 1, upstream: ['b'] }]);
    s = ok(def, s, 'c');
    expect(s.decisions).toEqual([{ kind: 'finish', status: 'succeeded', output: { c: out('c') }, cancel: [] }]);
    expect(s.state.finished).toBe(true);
  });

  it('starts independent branches together', () => {
    const def = dag(['a', 'b', 'c'], ['a->b', 'a->c']);
    const s = ok(def, started0(def), 'a');
    expect(started(s)).toEqual(['b', 'c']);
    expect(statuses(s.state)).toEqual({ a: 'succeeded', b: 'running', c: 'running' });
  });

  it('makes a join wait for both of its predecessors', () => {
    const def = dag(['a', 'b', 'c', 'd'], ['a->b', 'a->c', 'b->d', 'c->d']);
    let s = ok(def, started0(def), 'a');
    s = ok(def, s, 'b');
    expect(s.decisions).toEqual([]);
    expect(s.state.nodes.d?.status).toBe('pending');
    s = ok(def, s, 'c');
    expect(s.decisions).toEqual([{ kind: 'start', node: 'd', iteration: 1, attempt: 1, upstream: ['b', 'c'] }]);
  });

  it('puts the outputs of the terminal nodes, and only those, in the run output', () => {
    const def = dag(['a', 'b', 'c'], ['a->b', 'a->c']);
    let s = ok(def, started0(def), 'a');
    s = ok(def, s, 'b', undefined, 'from b');
    expect(finishOf(s)).toBeUndefined();
    s = ok(def, s, 'c', undefined, 'from c');
    expect(finishOf(s)).toEqual({ kind: 'finish', status: 'succeeded', output: { b: out('from b'), c: out('from c') }, cancel: [] });
    expect(s.state.outputs).toEqual({ a: out('a'), b: out('from b'), c: out('from c') });
  });

  it('records the output and finish time of a node that succeeded', () => {
    const def = dag(['a', 'b'], ['a->b']);
    const s = nodeSucceeded(def, started0(def).state, undefined, 'a', out('hello'), LATER);
    expect(s.state.outputs.a).toEqual(out('hello'));
    expect(s.state.nodes.a).toMatchObject({ status: 'succeeded', finishedAt: LATER, iteration: 1, attempt: 1 });
    expect(s.state.edges).toEqual(['taken']);
  });
});

describe('conditional edges', () => {
  type In = { go: boolean };
  /** a -> b (only when input.go) -> c, and a -> d unconditionally. */
  const branch = () =>
    graph<In>('branch')
      .node('a', { agent: 'pipeline' })
      .node('b', { agent: 'pipeline' })
      .node('c', { agent: 'pipeline' })
      .node('d', { agent: 'pipeline' })
      .edge('a', 'b', (ctx) => ctx.input.go)
      .edge('b', 'c')
      .edge('a', 'd')
      .build();

  it('skips the target of an edge not taken and propagates the skip down the branch', () => {
    const def = branch();
    let s = ok(def, started0(def), 'a', { go: false });
    expect(skipped(s)).toEqual(['b', 'c']);
    expect(started(s)).toEqual(['d']);
    expect(statuses(s.state)).toEqual({ a: 'succeeded', b: 'skipped', c: 'skipped', d: 'running' });
    expect(s.state.nodes.b?.finishedAt).toBe(NOW);
    expect(s.state.edges).toEqual(['not_taken', 'not_taken', 'taken']);
    const skipB = s.decisions.find((d) => d.kind === 'skip' && d.node === 'b');
    expect(skipB).toMatchObject({ reason: expect.stringContaining('a') });
    s = ok(def, s, 'd', { go: false });
    expect(finishOf(s)).toEqual({ kind: 'finish', status: 'succeeded', output: { d: out('d') }, cancel: [] });
  });

  it('takes the edge when the predicate is truthy', () => {
    const def = branch();
    const s = ok(def, started0(def), 'a', { go: true });
    expect(started(s)).toEqual(['b', 'd']);
    expect(skipped(s)).toEqual([]);
  });

  it('counts a truthy non-boolean predicate result as taken and a falsy one as not taken', () => {
    const def = graph('g')
      .node('a', { agent: 'pipeline' })
      .node('b', { agent: 'pipeline' })
      .node('c', { agent: 'pipeline' })
      .edge('a', 'b', () => 'yes')
      .edge('a', 'c', () => 0)
      .build();
    const s = ok(def, started0(def), 'a');
    expect(started(s)).toEqual(['b']);
    expect(skipped(s)).toEqual(['c']);
  });

  it('runs a join after a conditional branch, counting the skipped predecessor as resolved', () => {
    // a -> b (only when go) -> d, a -> c -> d.
    const def = graph<In>('join')
      .node('a', { agent: 'pipeline' })
      .node('b', { agent: 'pipeline' })
      .node('c', { agent: 'pipeline' })
      .node('d', { agent: 'pipeline' })
      .edge('a', 'b', (ctx) => ctx.input.go)
      .edge('a', 'c')
      .edge('b', 'd')
      .edge('c', 'd')
      .build();
    const input = { go: false };
    let s = ok(def, started0(def), 'a', input);
    expect(skipped(s)).toEqual(['b']);
    expect(started(s)).toEqual(['c']);
    expect(s.state.nodes.d?.status).toBe('pending');
    s = ok(def, s, 'c', input);
    expect(s.decisions).toEqual([{ kind: 'start', node: 'd', iteration: 1, attempt: 1, upstream: ['c'] }]);
    s = ok(def, s, 'd', input);
    expect(finishOf(s)).toEqual({ kind: 'finish', status: 'succeeded', output: { d: out('d') }, cancel: [] });
    expect(statuses(s.state)).toEqual({ a: 'succeeded', b: 'skipped', c: 'succeeded', d: 'succeeded' });
  });

  it('puts a node whose every out-edge was not taken in the run output', () => {
    const def = graph('g')
      .node('a', { agent: 'pipeline' })
      .node('b', { agent: 'pipeline' })
      .edge('a', 'b', () => false)
      .build();
    const s = ok(def, started0(def), 'a');
    expect(skipped(s)).toEqual(['b']);
    expect(finishOf(s)).toEqual({ kind: 'finish', status: 'succeeded', output: { a: out('a') }, cancel: [] });
  });

  it('passes the run input, outputs so far and iterations to a predicate', () => {
    const seen: unknown[] = [];
    const def = graph<{ q: string }>('g')
      .node('a', { agent: 'pipeline' })
      .node('b', { agent: 'pipeline' })
      .edge('a', 'b', (ctx) => {
        seen.push(structuredClone(ctx));
        return true;
      })
      .build();
    ok(def, started0(def), 'a', { q: 'why' }, 'because');
    expect(seen).toEqual([{ input: { q: 'why' }, outputs: { a: out('because') }, iterations: { a: 1, b: 0 } }]);
  });

  it('fails the run with AO_EDGE_PREDICATE_FAILED when a predicate throws, cancelling what still runs', () => {
    const def = graph('g')
      .node('a', { agent: 'pipeline' })
      .node('x', { agent: 'pipeline' })
      .node('b', { agent: 'pipeline' })
      .edge('a', 'b', () => {
        throw new Error('predicate exploded');
      })
      .build();
    const s = ok(def, started0(def), 'a');
    expect(s.decisions).toHaveLength(1);
    const fin = finishOf(s)!;
    expect(fin.status).toBe('failed');
    expect(fin.error?.code).toBe('AO_EDGE_PREDICATE_FAILED');
    expect(fin.error?.node).toBe('a');
    expect(fin.error?.message).toContain('predicate exploded');
    expect(fin.cancel).toEqual(['x']);
    expect(s.state.finished).toBe(true);
    expect(s.state.nodes.x).toMatchObject({ status: 'failed', error: { code: 'AO_NODE_CANCELLED' } });
    expect(s.state.nodes.b?.status).toBe('pending');
  });
});

describe('bounded loop (draft-critique example)', () => {
  const def = draftCritique.build();
  const input = { brief: 'a post about actors' };
  const critique = (s: Step, text: string): Step => nodeSucceeded(def, s.state, input, 'critique', out(text), NOW);
  const succeed = (s: Step, node: string): Step => nodeSucceeded(def, s.state, input, node, out(`${node} text`), NOW);

  it('goes outline -> draft -> critique, then loops back to draft while the critique does not approve', () => {
    let s = begin(def, initialState(def), NOW);
    expect(started(s)).toEqual(['outline']);
    s = succeed(s, 'outline');
    expect(s.decisions).toEqual([{ kind: 'start', node: 'draft', iteration: 1, attempt: 1, upstream: ['outline'] }]);
    s = succeed(s, 'draft');
    expect(s.decisions).toEqual([{ kind: 'start', node: 'critique', iteration: 1, attempt: 1, upstream: ['draft'] }]);
    s = critique(s, 'The intro is weak.');
    expect(s.decisions).toEqual([
      { kind: 'loop', from: 'critique', to: 'draft', iteration: 2, reset: ['draft', 'critique'] },
      { kind: 'start', node: 'draft', iteration: 2, attempt: 1, upstream: ['outline', 'critique'] },
    ]);
    // The body went back to pending (draft then started again); publish was not decided yet.
    expect(statuses(s.state)).toEqual({ outline: 'succeeded', draft: 'running', critique: 'pending', publish: 'pending' });
    expect(s.state.nodes.critique?.iteration).toBe(1);
    expect(s.state.nodes.draft?.iteration).toBe(2);
    expect(s.state.edges).toEqual(['taken', 'unresolved', 'unresolved', 'unresolved']);
  });

  it('stops looping at maxIterations and then publishes (approved || iterations.draft >= MAX_DRAFTS)', () => {
    let s = succeed(begin(def, initialState(def), NOW), 'outline');
    const loops: Decision[] = [];
    for (let i = 1; i <= MAX_DRAFTS; i++) {
      expect(s.state.nodes.draft).toMatchObject({ status: 'running', iteration: i });
      s = succeed(s, 'draft');
      expect(started(s)).toEqual(['critique']);
      expect(s.state.nodes.critique?.iteration).toBe(i);
      s = critique(s, `Not yet (round ${i}).`);
      loops.push(...s.decisions.filter((d) => d.kind === 'loop'));
      if (i < MAX_DRAFTS) expect(started(s)).toEqual(['draft']);
    }
    expect(loops.map((d) => (d.kind === 'loop' ? d.iteration : 0))).toEqual([2, 3]);
    // Draft ran MAX_DRAFTS times: the loop is exhausted and the forward edge to publish is taken.
    expect(s.decisions).toEqual([{ kind: 'start', node: 'publish', iteration: 1, attempt: 1, upstream: ['critique'] }]);
    expect(s.state.nodes.draft).toMatchObject({ status: 'succeeded', iteration: MAX_DRAFTS });
    s = succeed(s, 'publish');
    expect(finishOf(s)).toEqual({ kind: 'finish', status: 'succeeded', output: { publish: out('publish text') }, cancel: [] });
    expect(statuses(s.state)).toEqual({ outline: 'succeeded', draft: 'succeeded', critique: 'succeeded', publish: 'succeeded' });
  });

  it('publishes without looping once the critic approves', () => {
    let s = succeed(succeed(begin(def, initialState(def), NOW), 'outline'), 'draft');
    s = critique(s, 'APPROVED');
    expect(s.decisions).toEqual([{ kind: 'start', node: 'publish', iteration: 1, attempt: 1, upstream: ['critique'] }]);
    expect(s.state.nodes.draft?.iteration).toBe(1);
  });

  it('skips the exit node when the loop is spent and the exit predicate is false', () => {
    const strict = graph('strict')
      .node('a', { agent: 'pipeline' })
      .node('b', { agent: 'pipeline', maxIterations: 2 })
      .node('exit', { agent: 'pipeline' })
      .edge('a', 'b')
      .edge('b', 'b', () => true)
      .edge('b', 'exit', () => false)
      .build();
    let s = ok(strict, started0(strict), 'a');
    s = ok(strict, s, 'b');
    expect(s.decisions.map((d) => d.kind)).toEqual(['loop', 'start']);
    s = ok(strict, s, 'b');
    expect(skipped(s)).toEqual(['exit']);
    expect(finishOf(s)).toEqual({ kind: 'finish', status: 'succeeded', output: { b: out('b') }, cancel: [] });
    expect(s.state.nodes.b?.iteration).toBe(2);
  });
});

describe('loop edge cases', () => {
  // Regression: the bound used to be each body node's own start count, so a bounded node on a
  // branch the loop never takes kept the loop going forever.
  it('stops a loop whose only bounded node sits on a branch the loop skips', () => {
    // a -> h; h -> x (never taken) -> y; h -> y; y -> h (back). Only x has maxIterations: 2.
    const def = graph('cond-bound')
      .node('a', { agent: 'pipeline' })
      .node('h', { agent: 'pipeline' })
      .node('x', { agent: 'pipeline', maxIterations: 2 })
      .node('y', { agent: 'pipeline' })
      .edge('a', 'h')
      .edge('h', 'x', () => false)
      .edge('h', 'y')
      .edge('x', 'y')
      .edge('y', 'h')
      .build();
    expect(def.loops).toEqual([{ from: 'y', to: 'h', body: ['h', 'x', 'y'] }]);
    let s = ok(def, started0(def), 'a');
    let loops = 0;
    for (let i = 0; i < 10 && !s.state.finished; i++) {
      s = ok(def, s, 'h');
      expect(skipped(s)).toEqual(['x']);
      s = ok(def, s, 'y');
      loops += s.decisions.filter((d) => d.kind === 'loop').length;
    }
    expect(loops).toBeLessThanOrEqual(2);
    expect(s.state.finished).toBe(true);
  });

  // Regression: a back edge taken while another body node still ran reset that running node to
  // pending and restarted the head, so one node had two live executions. Now the loop waits until
  // the body is idle, and one restart serves both back edges.
  it('defers a loop while another body node runs, then restarts its head once', () => {
    // a -> h; h -> p, h -> q; p -> h and q -> h are both back edges. h has maxIterations: 3.
    const def = graph('two-back-edges')
      .node('a', { agent: 'pipeline' })
      .node('h', { agent: 'pipeline', maxIterations: 3 })
      .node('p', { agent: 'pipeline' })
      .node('q', { agent: 'pipeline' })
      .edge('a', 'h')
      .edge('h', 'p')
      .edge('h', 'q')
      .edge('p', 'h')
      .edge('q', 'h')
      .build();
    expect(def.edges.map((e) => e.back)).toEqual([false, false, false, true, true]);
    let s = ok(def, ok(def, started0(def), 'a'), 'h');
    expect(started(s)).toEqual(['p', 'q']);
    s = ok(def, s, 'p'); // q still runs: the loop waits
    expect(started(s)).toEqual([]);
    expect(s.state.nodes.q).toMatchObject({ status: 'running' });
    expect(s.state.deferred).toEqual([{ from: 'p', to: 'h' }]);
    s = ok(def, s, 'q');
    expect(started(s)).toEqual(['h']);
    expect(s.decisions.filter((d) => d.kind === 'loop')).toHaveLength(1);
    expect(s.state.nodes.h).toMatchObject({ status: 'running', iteration: 2 });
    expect(s.state.deferred).toEqual([]);
  });
});

describe('retries and failures', () => {
  const retrying = (retry?: { attempts: number; backoffMs?: number; maxBackoffMs?: number }) =>
    graph('r')
      .node('a', { agent: 'pipeline', ...(retry ? { retry } : {}) })
      .node('b', { agent: 'pipeline' })
      .edge('a', 'b')
      .build();

  it('doubles backoffMs on each retry, capped by maxBackoffMs', () => {
    const p = { attempts: 5, backoffMs: 100, maxBackoffMs: 1000 };
    expect([1, 2, 3, 4, 5].map((n) => backoff(p, n))).toEqual([100, 200, 400, 800, 1000]);
    expect(backoff({ attempts: 1, backoffMs: 0, maxBackoffMs: 10 }, 3)).toBe(0);
  });

  it('turns a retryable failure into a retry decision with backoff, and retryDue restarts it with attempt + 1', () => {
    const def = retrying({ attempts: 2, backoffMs: 100, maxBackoffMs: 150 });
    let s = started0(def);
    s = nodeFailed(def, s.state, 'a', boom, true, NOW);
    expect(s.decisions).toEqual([{ kind: 'retry', node: 'a', attempt: 2, delayMs: 100, error: boom }]);
    expect(s.state.nodes.a).toMatchObject({ status: 'retrying', attempt: 1, error: { code: boom.code, message: boom.message } });
    s = retryDue(def, s.state, 'a', LATER);
    expect(s.decisions).toEqual([{ kind: 'start', node: 'a', iteration: 1, attempt: 2, upstream: [] }]);
    expect(s.state.nodes.a).toMatchObject({ status: 'running', iteration: 1, attempt: 2, startedAt: LATER });
    s = nodeFailed(def, s.state, 'a', boom, true, NOW);
    // 100 doubled is 200, capped at 150.
    expect(s.decisions).toEqual([{ kind: 'retry', node: 'a', attempt: 3, delayMs: 150, error: boom }]);
    s = retryDue(def, s.state, 'a', NOW);
    expect(s.decisions).toEqual([{ kind: 'start', node: 'a', iteration: 1, attempt: 3, upstream: [] }]);
  });

  it('fails the run with AO_NODE_FAILED naming the node and the cause once the retries are spent', () => {
    const def = retrying({ attempts: 2, backoffMs: 10 });
    let s = started0(def);
    for (let i = 0; i < 2; i++) {
      s = nodeFailed(def, s.state, 'a', boom, true, NOW);
      expect(s.decisions.map((d) => d.kind)).toEqual(['retry']);
      s = retryDue(def, s.state, 'a', NOW);
    }
    s = nodeFailed(def, s.state, 'a', boom, true, LATER);
    expect(s.decisions).toHaveLength(1);
    const fin = finishOf(s)!;
    expect(fin.status).toBe('failed');
    expect(fin.cancel).toEqual([]);
    expect(fin.error).toMatchObject({ code: 'AO_NODE_FAILED', node: 'a', details: { cause: boom, attempts: 3 } });
    expect(fin.error?.message).toContain('"a"');
    expect(s.state.nodes.a).toMatchObject({ status: 'failed', attempt: 3, finishedAt: LATER, error: { code: boom.code } });
    expect(s.state.nodes.b?.status).toBe('pending');
    expect(s.state.finished).toBe(true);
  });

  it('runs on normally when a retry succeeds', () => {
    const def = retrying({ attempts: 1, backoffMs: 10 });
    let s = nodeFailed(def, started0(def).state, 'a', boom, true, NOW);
    s = retryDue(def, s.state, 'a', NOW);
    s = ok(def, s, 'a');
    expect(started(s)).toEqual(['b']);
    expect(s.state.nodes.a).toMatchObject({ status: 'succeeded', attempt: 2 });
  });

  it('fails at once on a non-retryable failure, even with a retry policy', () => {
    const def = retrying({ attempts: 3 });
    const s = nodeFailed(def, started0(def).state, 'a', boom, false, NOW);
    expect(s.decisions.map((d) => d.kind)).toEqual(['finish']);
    expect(finishOf(s)?.error).toMatchObject({ code: 'AO_NODE_FAILED', node: 'a', details: { cause: boom, attempts: 1 } });
  });

  it('fails at once on a retryable failure of a node without a retry policy or with 0 attempts', () => {
    for (const def of [retrying(), retrying({ attempts: 0 })]) {
      const s = nodeFailed(def, started0(def).state, 'a', boom, true, NOW);
      expect(s.decisions.map((d) => d.kind)).toEqual(['finish']);
      expect(finishOf(s)?.error?.code).toBe('AO_NODE_FAILED');
    }
  });

  it('lists the nodes still running or waiting to retry in the cancel of the failed finish', () => {
    const def = graph('par')
      .node('a', { agent: 'pipeline' })
      .node('b', { agent: 'pipeline' })
      .node('c', { agent: 'pipeline', retry: { attempts: 1 } })
      .build();
    let s = started0(def);
    expect(started(s)).toEqual(['a', 'b', 'c']);
    s = nodeFailed(def, s.state, 'c', boom, true, NOW);
    expect(s.decisions.map((d) => d.kind)).toEqual(['retry']);
    s = nodeFailed(def, s.state, 'a', boom, false, NOW);
    const fin = finishOf(s)!;
    expect(fin.status).toBe('failed');
    expect(fin.error?.node).toBe('a');
    expect(fin.cancel).toEqual(['b', 'c']);
    expect(s.state.nodes.b).toMatchObject({ status: 'failed', error: { code: 'AO_NODE_CANCELLED' } });
    expect(s.state.nodes.c).toMatchObject({ status: 'failed', error: { code: 'AO_NODE_CANCELLED' } });
  });
});

describe('stale and duplicate messages', () => {
  const def = dag(['a', 'b'], ['a->b']);

  it('ignores a duplicate success of a node that already succeeded', () => {
    const first = ok(def, started0(def), 'a');
    const again = ok(def, first, 'a', undefined, 'other text');
    expect(again.decisions).toEqual([]);
    expect(again.state).toBe(first.state);
    expect(again.state.outputs.a).toEqual(out('a'));
  });

  it('ignores a completion or failure of a node that is not running, and of an unknown node', () => {
    const s = started0(def);
    for (const step of [
      nodeSucceeded(def, s.state, undefined, 'b', out('early'), NOW),
      nodeSucceeded(def, s.state, undefined, 'ghost', out('?'), NOW),
      nodeFailed(def, s.state, 'b', boom, true, NOW),
      nodeFailed(def, s.state, 'ghost', boom, true, NOW),
      retryDue(def, s.state, 'a', NOW),
      retryDue(def, s.state, 'ghost', NOW),
    ]) {
      expect(step.decisions).toEqual([]);
      expect(step.state).toBe(s.state);
    }
  });

  it('ignores a success while the node waits to retry', () => {
    const r = graph('r')
      .node('a', { agent: 'pipeline', retry: { attempts: 1 } })
      .build();
    const s = nodeFailed(r, started0(r).state, 'a', boom, true, NOW);
    const late = nodeSucceeded(r, s.state, undefined, 'a', out('late'), NOW);
    expect(late.decisions).toEqual([]);
    expect(late.state).toBe(s.state);
  });

  it('ignores a late completion of an earlier attempt once the retry runs', () => {
    const r = graph('r')
      .node('a', { agent: 'pipeline', retry: { attempts: 1 } })
      .build();
    const failed = nodeFailed(r, started0(r).state, 'a', boom, true, NOW, { iteration: 1, attempt: 1 });
    const retried = retryDue(r, failed.state, 'a', NOW);
    const late = nodeSucceeded(r, retried.state, undefined, 'a', out('late'), NOW, { iteration: 1, attempt: 1 });
    expect(late.decisions).toEqual([]);
    const current = nodeSucceeded(r, retried.state, undefined, 'a', out('now'), NOW, { iteration: 1, attempt: 2 });
    expect(current.state.nodes.a).toMatchObject({ status: 'succeeded', attempt: 2 });
    expect(current.state.nodes.a!.error).toBeUndefined();
  });

  it('ignores every message once the run has finished', () => {
    const r = graph('r')
      .node('a', { agent: 'pipeline', retry: { attempts: 1 } })
      .node('b', { agent: 'pipeline' })
      .build();
    const running = started0(r).state;
    // A finished run whose node is still marked running: only the finished flag stops the message.
    const done: SchedulerState = { ...running, finished: true };
    expect(nodeSucceeded(r, done, undefined, 'a', out('a'), NOW)).toEqual({ state: done, decisions: [] });
    expect(nodeFailed(r, done, 'a', boom, true, NOW)).toEqual({ state: done, decisions: [] });
    const waiting: SchedulerState = { ...nodeFailed(r, running, 'a', boom, true, NOW).state, finished: true };
    expect(retryDue(r, waiting, 'a', NOW)).toEqual({ state: waiting, decisions: [] });
  });
});

describe('waits', () => {
  const def = dag(['ask'], []);
  const question: WaitInfo = {
    id: 'supervisor/ask/2',
    node: 'ask',
    kind: 'interrupt',
    prompt: 'Which order?',
    schema: {},
    since: NOW,
    countWallClock: false,
    actor: 'supervisor/ask',
  };

  it('opens a question once: a second registration of an open wait changes nothing', () => {
    const opened = waitOpened(started0(def).state, question);
    expect(Object.keys(opened.state.waits ?? {})).toEqual([question.id]);
    expect(waitOpened(opened.state, question).state).toBe(opened.state);
  });

  // After a take-over the asking actor runs again and its `wait.registered` (already in the log)
  // is delivered again; when the answer was taken before that copy came, the wait stayed open
  // for good and the run's steps differed from its recorded replay's.
  it('never opens again a wait that was answered: a late copy of its registration changes nothing', () => {
    const opened = waitOpened(started0(def).state, question);
    const answered = waitResolved(def, opened.state, question.id, { kind: 'signal', payload: { answer: 'A-7731' }, signal: 's1' }, LATER);
    expect(answered.state.waits).toEqual({});
    expect(answered.decisions.map((d) => d.kind)).toEqual(['resolved']);
    const late = waitOpened(answered.state, question);
    expect(late.state).toBe(answered.state);
    expect(late.decisions).toEqual([]);
  });
});
