import { schemaJson, ApprovalAnswerSchema } from '@ao/graphs';
import type { GraphDef, NodeOutput, RetryPolicy, RunContext } from '@ao/graphs';
import type { ErrorInfo, NodeState, WaitInfo } from '@ao/runtime';
import { fieldOf } from './fields.js';
import type { At, Decision, SchedulerState, Step, WaitOutcome } from './scheduler-types.js';

export type { At, Decision, EdgeState, SchedulerState, Step, WaitOutcome } from './scheduler-types.js';

/**
 * The run supervisor's decisions, as pure functions over plain data (no I/O, no clock), so tests
 * call them directly and a recorded replay is the same functions fed the same messages.
 *
 * Semantics:
 * - Entry nodes start first. When a node succeeds, each outgoing edge is resolved: taken when it
 *   has no predicate or its predicate is truthy (and, for a routing supervisor whose output names
 *   a `route`, when its target is in the route), else not taken.
 * - A node runs when every forward in-edge is resolved and at least one was taken (a join waits
 *   for every predecessor that can still run). If all are resolved and none was taken it is
 *   skipped, and its own out-edges resolve as not taken, so skips propagate and a join after a
 *   conditional branch still runs.
 * - A back edge (one closing a cycle) that is taken restarts its loop: the loop body goes back to
 *   pending and the loop head starts its next iteration; the source's forward edges wait for the
 *   iteration that does not loop. A loop makes at most `maxIterations` passes, the smallest
 *   `maxIterations` of its body nodes, counted by the loop head's executions (the head runs on
 *   every pass, whichever branches inside the body are taken). While another body node is still
 *   running, a taken back edge waits (deferred) and the loop restarts once the body is idle, so a
 *   node is never started while it runs.
 * - A failed node is retried per its `retry` policy; after that the run fails with the cause.
 * - A node with `approval` does not start when its in-edges allow it: it waits (`waiting`, a wait
 *   `approval/<node>/<iteration>`) until a person answers. Approved, it starts with the answer in
 *   its context; rejected, it is skipped (its out-edges not taken, as for a skip); a timeout
 *   approves, rejects or fails the run as the node says.
 * - Questions an agent asks mid-node are waits too (registered by the node's actor); the node
 *   stays `running`. A run whose only activity is waits is quiescent: it is passivated.
 * - The run ends when nothing runs or waits to retry: succeeded if every node succeeded or was
 *   skipped, failed (AO_RUN_STRANDED) if a node was left pending.
 *
 * Its state and decision types are in ./scheduler-types.ts.
 */
export function initialState<I>(def: GraphDef<I>): SchedulerState {
  return {
    nodes: Object.fromEntries(def.nodes.map((n) => [n.id, { status: 'pending', iteration: 0, attempt: 0 } satisfies NodeState])),
    edges: def.edges.map(() => 'unresolved'),
    deferred: [],
    outputs: {},
    finished: false,
  };
}

export function runContext<I>(s: SchedulerState, input: I): RunContext<I> {
  return {
    input,
    outputs: s.outputs,
    iterations: Object.fromEntries(Object.entries(s.nodes).map(([id, n]) => [id, n.iteration])),
    ...(s.approvals && Object.keys(s.approvals).length ? { approvals: s.approvals } : {}),
  };
}

/** Start the entry nodes. */
export function begin<I>(def: GraphDef<I>, prev: SchedulerState, now: string): Step {
  const state = structuredClone(prev);
  const decisions: Decision[] = def.entries.map((id) => start(def, state, id, now));
  return { state, decisions };
}

/** The stable id of the approval before a node's iteration. */
export const approvalWaitId = (node: string, iteration: number): string => `approval/${node}/${iteration}`;

/** An agent asked a question mid-node (its actor registered the wait): record it. */
export function waitOpened(prev: SchedulerState, wait: WaitInfo): Step {
  const n = prev.nodes[wait.node];
  if (prev.finished || !n || n.status !== 'running' || prev.waits?.[wait.id] || prev.closedWaits?.includes(wait.id)) return { state: prev, decisions: [] };
  const state = structuredClone(prev);
  state.waits = { ...state.waits, [wait.id]: wait };
  return { state, decisions: [] };
}

/**
 * A wait ended. An approval starts its node (approved) or skips it (rejected), or, timed out with
 * `fail`, fails the run; a question's outcome goes to the asking actor (a `fail` timeout fails the run).
 */
export function waitResolved<I>(def: GraphDef<I>, prev: SchedulerState, waitId: string, outcome: WaitOutcome, now: string): Step {
  const wait = prev.waits?.[waitId];
  if (prev.finished || !wait) return { state: prev, decisions: [] };
  const state = structuredClone(prev);
  delete state.waits![waitId];
  state.closedWaits = [...(state.closedWaits ?? []), waitId];
  if (outcome.kind === 'timeout' && outcome.action === 'fail') {
    return finish(state, [{ kind: 'resolved', wait, outcome }], 'failed', now, {
      code: 'AO_WAIT_TIMED_OUT',
      message: `nobody answered ${wait.kind === 'approval' ? 'the approval before' : 'the question of'} node "${wait.node}" in time`,
      node: wait.node,
      details: { wait: wait.id },
    });
  }
  if (wait.kind === 'budget') {
    const decision = outcome.kind === 'signal' ? fieldOf(outcome.payload, 'decision') : undefined;
    if (decision === 'grant') return { state, decisions: [{ kind: 'resolved', wait, outcome }] };
    // The escalation's limit, value and used (see the supervisor's budget wait).
    const p = { limit: fieldOf(wait.payload, 'limit'), value: fieldOf(wait.payload, 'value'), used: fieldOf(wait.payload, 'used') };
    const forked = decision === 'fork';
    return finish(state, [{ kind: 'resolved', wait, outcome }], 'budget_exceeded', now, {
      code: 'AO_BUDGET_EXCEEDED',
      message: `the run reached its soft ${p.limit} limit (${p.used} used of ${p.value}) and ${forked ? 'a person forked it with a new budget' : outcome.kind === 'timeout' ? 'nobody granted more in time' : 'a person denied more'}`,
      node: wait.node,
      details: { limit: p.limit, scope: 'run', value: p.value, used: p.used, soft: true, decision: decision ?? 'timeout' },
    });
  }
  if (wait.kind !== 'approval') return { state, decisions: [{ kind: 'resolved', wait, outcome }] };
  const n = state.nodes[wait.node]!;
  const approved = outcome.kind === 'timeout' ? outcome.action === 'approve' : fieldOf(outcome.payload, 'approved') !== false;
  const answer = outcome.kind === 'signal' ? outcome.payload : { approved, timedOut: true };
  state.approvals = { ...state.approvals, [wait.node]: answer };
  const decisions: Decision[] = [{ kind: 'resolved', wait, outcome, approved }];
  if (approved) {
    state.nodes[wait.node] = { status: 'running', iteration: n.iteration, attempt: 1, startedAt: now };
    decisions.push({ kind: 'start', node: wait.node, iteration: n.iteration, attempt: 1, upstream: upstreamOf(def, state, wait.node) });
    return { state, decisions };
  }
  state.nodes[wait.node] = { ...n, status: 'skipped', finishedAt: now };
  decisions.push({ kind: 'skip', node: wait.node, reason: outcome.kind === 'timeout' ? 'its approval timed out (rejected)' : 'a person rejected it' });
  def.edges.forEach((e, i) => {
    if (e.from === wait.node && !e.back) state.edges[i] = 'not_taken';
  });
  propagate(def, state, decisions, now);
  return maybeFinish(def, state, decisions, now);
}

/**
 * Nothing can happen until a person answers: there are open waits, nothing waits to retry, and
 * every running node is blocked on a question. The run is then passivated.
 */
export function quiescent(state: SchedulerState): boolean {
  const waits = Object.values(state.waits ?? {});
  if (state.finished || !waits.length) return false;
  return Object.entries(state.nodes).every(
    ([id, n]) => n.status !== 'retrying' && (n.status !== 'running' || waits.some((w) => w.node === id && w.kind !== 'approval')),
  );
}

const isCurrent = (n: NodeState | undefined, at?: At): n is NodeState =>
  !!n && n.status === 'running' && (!at || (at.iteration === n.iteration && at.attempt === n.attempt));

export function nodeSucceeded<I>(def: GraphDef<I>, prev: SchedulerState, input: I, node: string, output: NodeOutput, now: string, at?: At): Step {
  const n = prev.nodes[node];
  if (prev.finished || !isCurrent(n, at)) return { state: prev, decisions: [] }; // stale or duplicate
  const state = structuredClone(prev);
  const { error: _lastError, ...rest } = n;
  state.nodes[node] = { ...rest, status: 'succeeded', finishedAt: now };
  state.outputs[node] = output;
  const decisions: Decision[] = [];
  try {
    const ctx = runContext(state, input);
    const loop = backEdgeTaken(def, state, node, ctx);
    if (!loop) resolveForward(def, state, node, ctx, decisions, now);
    else if (regionBusy(def, state, loop.to)) state.deferred.push({ from: loop.from, to: loop.to });
    else restartLoop(def, state, loop, decisions, now);
    runDeferred(def, state, ctx, decisions, now);
  } catch (err) {
    return finish(state, decisions, 'failed', now, {
      code: 'AO_EDGE_PREDICATE_FAILED',
      message: `an edge predicate after node "${node}" threw: ${(err as Error)?.message ?? String(err)}`,
      node,
    });
  }
  return maybeFinish(def, state, decisions, now);
}

export function nodeFailed<I>(def: GraphDef<I>, prev: SchedulerState, node: string, error: ErrorInfo, retryable: boolean, now: string, at?: At): Step {
  const n = prev.nodes[node];
  if (prev.finished || !isCurrent(n, at)) return { state: prev, decisions: [] };
  const state = structuredClone(prev);
  const policy = def.node(node)?.retry;
  if (retryable && policy && n.attempt <= policy.attempts) {
    const delayMs = backoff(policy, n.attempt);
    state.nodes[node] = { ...n, status: 'retrying', retryAt: Date.parse(now) + delayMs, error: { code: error.code, message: error.message } };
    return { state, decisions: [{ kind: 'retry', node, attempt: n.attempt + 1, delayMs, error }] };
  }
  state.nodes[node] = { ...n, status: 'failed', finishedAt: now, error: { code: error.code, message: error.message } };
  const attempts = n.attempt;
  return finish(state, [], 'failed', now, {
    code: 'AO_NODE_FAILED',
    message: `node "${node}" failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${error.code}: ${error.message}`,
    node,
    details: { cause: error, attempts },
  });
}

/** The backoff timer of a retry fired: start the next attempt. */
export function retryDue<I>(def: GraphDef<I>, prev: SchedulerState, node: string, now: string): Step {
  const state = structuredClone(prev);
  const n = state.nodes[node];
  if (state.finished || !n || n.status !== 'retrying') return { state: prev, decisions: [] };
  const { retryAt: _due, ...rest } = n;
  state.nodes[node] = { ...rest, status: 'running', attempt: n.attempt + 1, startedAt: now };
  return { state, decisions: [{ kind: 'start', node, iteration: n.iteration, attempt: n.attempt + 1, upstream: upstreamOf(def, state, node) }] };
}

/** Delay before retry number `attempt` (1-based): backoffMs doubled each time, capped. */
export function backoff(p: RetryPolicy, attempt: number): number {
  return Math.min(p.maxBackoffMs, p.backoffMs * 2 ** Math.max(0, attempt - 1));
}

function start<I>(def: GraphDef<I>, state: SchedulerState, id: string, now: string): Decision & { kind: 'start' | 'wait' } {
  const n = state.nodes[id]!;
  const iteration = n.iteration + 1;
  const approval = def.node(id)?.approval;
  if (approval) {
    // A person approves this execution first: the node waits (and its iteration is counted now).
    state.nodes[id] = { status: 'waiting', iteration, attempt: 0, startedAt: now };
    const wait: WaitInfo = {
      id: approvalWaitId(id, iteration),
      node: id,
      kind: 'approval',
      prompt: approval.prompt,
      schema: schemaJson(approval.schema ?? ApprovalAnswerSchema),
      since: now,
      ...(approval.timeoutSec !== undefined ? { timeoutAt: Date.parse(now) + approval.timeoutSec * 1000 } : {}),
      countWallClock: approval.countWallClock,
    };
    state.waits = { ...state.waits, [wait.id]: wait };
    return { kind: 'wait', wait };
  }
  state.nodes[id] = { status: 'running', iteration, attempt: 1, startedAt: now };
  return { kind: 'start', node: id, iteration, attempt: 1, upstream: upstreamOf(def, state, id) };
}

/** Predecessors (forward or back edge) that have an output: what the node's prompt builds on. */
function upstreamOf<I>(def: GraphDef<I>, state: SchedulerState, id: string): string[] {
  const ups: string[] = [];
  def.edges.forEach((e, i) => {
    if (e.to !== id || !state.outputs[e.from]) return;
    if (e.back || state.edges[i] === 'taken') ups.push(e.from);
  });
  return [...new Set(ups)];
}

type Loop = GraphDef<unknown>['loops'][number];

/** The loop a node's completion closes, if its back edge is taken and the loop has passes left. */
function backEdgeTaken<I>(def: GraphDef<I>, state: SchedulerState, node: string, ctx: RunContext<I>): Loop | undefined {
  for (const e of def.edges) {
    if (e.from !== node || !e.back) continue;
    const loop = def.loops.find((l) => l.from === e.from && l.to === e.to)!;
    if (loopExhausted(def, state, loop) || (e.when && !e.when(ctx))) continue;
    return loop;
  }
  return undefined;
}

/** A loop's passes are its head's executions; the bound is the smallest maxIterations in its body. */
function loopExhausted<I>(def: GraphDef<I>, state: SchedulerState, loop: Loop): boolean {
  const bounds = loop.body.map((id) => def.node(id)!.maxIterations).filter((m): m is number => m !== undefined);
  return state.nodes[loop.to]!.iteration >= Math.min(...bounds);
}

/**
 * Everything a restart of `head` re-runs: the bodies of all loops back into it together, so that
 * with two back edges into one head (h -> p -> h, h -> q -> h) both branches run again.
 */
const region = <I>(def: GraphDef<I>, head: string): Set<string> => new Set(def.loops.filter((l) => l.to === head).flatMap((l) => l.body));

const regionBusy = <I>(def: GraphDef<I>, state: SchedulerState, head: string): boolean =>
  [...region(def, head)].some((id) => ['running', 'retrying', 'waiting'].includes(state.nodes[id]!.status));

function restartLoop<I>(def: GraphDef<I>, state: SchedulerState, loop: Loop, decisions: Decision[], now: string): void {
  const body = region(def, loop.to);
  for (const id of body) {
    const n = state.nodes[id]!;
    state.nodes[id] = { status: 'pending', iteration: n.iteration, attempt: 0 };
  }
  def.edges.forEach((edge, i) => {
    if (!edge.back && body.has(edge.from) && body.has(edge.to)) state.edges[i] = 'unresolved';
  });
  // One restart serves every back edge into this head that was waiting.
  state.deferred = state.deferred.filter((d) => d.to !== loop.to);
  decisions.push({ kind: 'loop', from: loop.from, to: loop.to, iteration: state.nodes[loop.to]!.iteration + 1, reset: [...body] });
  decisions.push(start(def, state, loop.to, now));
}

function resolveForward<I>(def: GraphDef<I>, state: SchedulerState, node: string, ctx: RunContext<I>, decisions: Decision[], now: string): void {
  // A routing supervisor's choice narrows its out-edges to the successors it picked.
  const route = state.outputs[node]?.route;
  def.edges.forEach((e, i) => {
    if (e.from !== node || e.back) return;
    state.edges[i] = (!e.when || e.when(ctx)) && (!route || route.includes(e.to)) ? 'taken' : 'not_taken';
  });
  propagate(def, state, decisions, now);
}

/** Loops that waited for their body to be idle: restart them, or, if out of passes, move on. */
function runDeferred<I>(def: GraphDef<I>, state: SchedulerState, ctx: RunContext<I>, decisions: Decision[], now: string): void {
  for (const d of [...state.deferred]) {
    if (!state.deferred.includes(d)) continue;
    const loop = def.loops.find((l) => l.from === d.from && l.to === d.to)!;
    if (regionBusy(def, state, loop.to)) continue;
    if (!loopExhausted(def, state, loop)) {
      restartLoop(def, state, loop, decisions, now);
    } else {
      state.deferred = state.deferred.filter((x) => x !== d);
      resolveForward(def, state, d.from, ctx, decisions, now);
    }
  }
}

/** Start nodes whose in-edges are all resolved with one taken; skip those with none taken. */
function propagate<I>(def: GraphDef<I>, state: SchedulerState, decisions: Decision[], now: string): void {
  let changed = true;
  while (changed) {
    changed = false;
    for (const n of def.nodes) {
      if (state.nodes[n.id]!.status !== 'pending') continue;
      const ins = def.edges.map((e, i) => ({ e, i })).filter(({ e }) => e.to === n.id && !e.back);
      if (ins.length === 0) continue; // entries start in begin(); loop heads are started by their loop
      const states = ins.map(({ i }) => state.edges[i]);
      if (states.includes('unresolved')) continue;
      changed = true;
      if (states.includes('taken')) {
        decisions.push(start(def, state, n.id, now));
      } else {
        state.nodes[n.id] = { ...state.nodes[n.id]!, status: 'skipped', finishedAt: now };
        decisions.push({ kind: 'skip', node: n.id, reason: `no incoming edge was taken (from ${ins.map(({ e }) => e.from).join(', ')})` });
        def.edges.forEach((e, i) => {
          if (e.from === n.id && !e.back) state.edges[i] = 'not_taken';
        });
      }
    }
  }
}

function maybeFinish<I>(def: GraphDef<I>, state: SchedulerState, decisions: Decision[], now: string): Step {
  const statuses = Object.values(state.nodes).map((n) => n.status);
  if (statuses.some((s) => s === 'running' || s === 'retrying' || s === 'waiting')) return { state, decisions };
  const stranded = Object.entries(state.nodes)
    .filter(([, n]) => n.status === 'pending')
    .map(([id]) => id);
  if (stranded.length) {
    return finish(state, decisions, 'failed', now, {
      code: 'AO_RUN_STRANDED',
      message: `nothing is running but node${stranded.length > 1 ? 's' : ''} ${stranded.join(', ')} never ran`,
      details: { nodes: stranded },
    });
  }
  // The run's output: what its last nodes produced (succeeded nodes none of whose out-edges was taken).
  const output: Record<string, NodeOutput> = {};
  for (const n of def.nodes) {
    if (state.nodes[n.id]!.status !== 'succeeded') continue;
    const tookOne = def.edges.some((e, i) => e.from === n.id && !e.back && state.edges[i] === 'taken');
    if (!tookOne) output[n.id] = state.outputs[n.id]!;
  }
  state.finished = true;
  return { state, decisions: [...decisions, { kind: 'finish', status: 'succeeded', output, cancel: [] }] };
}

/** Stop the run (cancelled, or out of budget): everything running or waiting to retry is cancelled. */
export function stopRun(prev: SchedulerState, status: 'cancelled' | 'budget_exceeded' | 'failed', error: ErrorInfo, now: string): Step {
  if (prev.finished) return { state: prev, decisions: [] };
  return finish(structuredClone(prev), [], status, now, error);
}

function finish(state: SchedulerState, decisions: Decision[], status: 'failed' | 'cancelled' | 'budget_exceeded', now: string, error: ErrorInfo): Step {
  const cancel = Object.entries(state.nodes)
    .filter(([, n]) => n.status === 'running' || n.status === 'retrying' || n.status === 'waiting')
    .map(([id]) => id);
  state.waits = {};
  for (const id of cancel)
    state.nodes[id] = {
      ...state.nodes[id]!,
      status: 'failed',
      finishedAt: now,
      error: {
        code: 'AO_NODE_CANCELLED',
        message: `stopped because the run ${status === 'cancelled' ? 'was cancelled' : status === 'budget_exceeded' ? 'ran out of budget' : 'failed'}`,
      },
    };
  state.finished = true;
  return { state, decisions: [...decisions, { kind: 'finish', status, error, cancel }] };
}
