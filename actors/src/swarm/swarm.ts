import { AoError } from '@ao/graphs';
import type { NodeDef, NodeOutput } from '@ao/graphs';
import { addUsage, emptyUsage, messagePayload, spanContextOf } from '@ao/runtime';
import type { ActorContext, ActorPath, ActorRef, Behaviour, Envelope, ErrorInfo, Typed, Usage } from '@ao/runtime';
import { runAgent } from '../agent-loop/agent-loop.js';
import { guarded, isRetryable } from '../agent-loop/guard.js';
import { Effects, errorInfo } from '../effects/effects.js';
import type { NodeContext } from '../messages.js';
import { parentOf, reportCrash } from '../pipeline/pipeline.js';
import { backoff } from '../run-supervisor/scheduler.js';
import { draft, executionName, isEnvelope } from '../services.js';
import type { ActorMessage, RunServices } from '../services.js';
import { nodeEnded, nodeSpan } from '../telemetry.js';

/** Default number of branches of a swarm node without `concurrency`. */
export const DEFAULT_SWARM_CONCURRENCY = 3;

interface SwarmState {
  start?: { env: Envelope; node: string; iteration: number; attempt: number; context: NodeContext; span: ReturnType<typeof nodeSpan> };
  branches: Array<{ ref?: ActorRef<ActorMessage>; attempt: number; output?: NodeOutput; done: boolean }>;
  usage: Usage;
  finished: boolean;
}

/**
 * A `swarm` node: spawns `concurrency` branch actors that run the agent loop in parallel, each
 * with its own angle, and joins them. A failed branch is retried on its own with the node's
 * `retry` policy (the finished branches are kept); when a branch's retries are spent, the node
 * fails, and the run supervisor does not retry it again.
 */
/** Why a stopped branch's work is aborted: one error for all (its stack is taken once). */
const BRANCH_STOPPED = new AoError('AO_NODE_CANCELLED', 'the branch actor was stopped');

export function fromSwarm(s: RunServices): Behaviour<ActorMessage, SwarmState> {
  const stopTimers: Array<() => void> = [];
  /** The execution under way (its span must end even when the actor is stopped). */
  let current: SwarmState | undefined;
  return {
    initialState: { branches: [], usage: emptyUsage(), finished: false },
    async receive(state, msg, ctx) {
      // Whatever reaches a swarm after its run ended (a branch result racing the stop) changes nothing.
      if (s.journal.ended) return state;
      if (!isEnvelope(msg)) return msg.local === 'retry' ? retryBranch(s, state, msg.branch ?? 0, ctx) : state;
      if (state.finished) return state;
      switch (msg.type) {
        case 'node.start': {
          if (state.start) return state; // delivered twice on recovery
          const next = started(s, msg, ctx);
          current = next;
          // One append for all of them: in a cluster each start goes to a node task, which the
          // journal commits at once, and one commit a branch cost W2 16 commits in a row.
          await startBranches(
            s,
            next,
            Array.from({ length: next.branches.length }, (_, i) => i + 1),
            ctx,
          );
          return next;
        }
        case 'branch.completed':
          return branchCompleted(s, state, msg, ctx);
        case 'branch.failed':
          return branchFailed(s, state, msg, ctx, stopTimers);
        default:
          return state;
      }
    },
    onStop() {
      for (const c of stopTimers) c();
      if (current?.start && !current.finished) nodeEnded(s, current.start.span, current.start.node, { code: 'AO_NODE_CANCELLED', message: 'stopped' });
    },
    onCrash(err, msg, path) {
      for (const c of stopTimers) c();
      reportCrash(s, err, msg, path);
    },
  };
}

/** The swarm's state for its `node.start`: `concurrency` branches, none started yet. */
function started(s: RunServices, msg: Envelope, ctx: ActorContext<ActorMessage>): SwarmState {
  const m = messagePayload(msg, 'node.start');
  const node = s.def.node(m.node)!;
  const of = node.concurrency ?? DEFAULT_SWARM_CONCURRENCY;
  return {
    start: {
      env: msg,
      node: m.node,
      iteration: m.iteration,
      attempt: m.attempt,
      context: m.context,
      span: nodeSpan(s, msg, { name: 'node', node: m.node, kind: 'swarm', iteration: m.iteration, attempt: m.attempt, actor: ctx.path }),
    },
    branches: Array.from({ length: of }, () => ({ attempt: 0, done: false })),
    usage: emptyUsage(),
    finished: false,
  };
}

/** A branch's output: kept; with the last one, the node completes with every branch's output. */
async function branchCompleted(s: RunServices, state: SwarmState, msg: Envelope, ctx: ActorContext<ActorMessage>): Promise<SwarmState> {
  const m = messagePayload(msg, 'branch.completed');
  const br = state.branches[m.branch - 1];
  if (!br || br.done || m.attempt !== br.attempt) return state;
  br.done = true;
  br.output = m.output;
  state.start?.span.span.addLink({ context: spanContextOf(msg.trace) ?? state.start.span.span.spanContext() });
  br.ref?.stop();
  state.usage = addUsage(state.usage, m.usage);
  if (state.branches.every((b) => b.done)) {
    state.finished = true;
    const outputs = state.branches.map((b) => b.output!);
    const output: NodeOutput = {
      text: outputs.map((o, i) => `### Branch ${i + 1}\n${o.text}`).join('\n\n'),
      branches: outputs.map((o) => o.text),
      ...(outputs.some((o) => o.tools?.length) ? { tools: outputs.flatMap((o) => o.tools ?? []) } : {}),
    };
    // The span ends before the reply, which may fail as the run ends: it must end either way.
    nodeEnded(s, state.start!.span, state.start!.node);
    await reply(s, state, ctx.path, { output, usage: state.usage });
  }
  return state;
}

/** A branch failed: retried on its own with the node's policy (a timer in `stopTimers`), else the node fails. */
async function branchFailed(
  s: RunServices,
  state: SwarmState,
  msg: Envelope,
  ctx: ActorContext<ActorMessage>,
  stopTimers: Array<() => void>,
): Promise<SwarmState> {
  const m = messagePayload(msg, 'branch.failed');
  const br = state.branches[m.branch - 1];
  if (!br || br.done || m.attempt !== br.attempt) return state;
  br.ref?.stop();
  state.usage = addUsage(state.usage, m.usage);
  const policy = s.def.node(state.start!.node)!.retry;
  if (m.retryable && policy && br.attempt <= policy.attempts) {
    const delayMs = backoff(policy, br.attempt);
    await s.journal.append([
      draft(
        { runId: s.runId, trace: state.start!.span.trace },
        {
          from: ctx.path,
          to: ctx.path,
          type: 'branch.retry_scheduled',
          causationId: msg.id,
          key: `${ctx.path}/retry-${m.branch}-${br.attempt + 1}`,
          payload: { node: state.start!.node, branch: m.branch, attempt: br.attempt + 1, delayMs, error: m.error },
        },
      ),
    ]);
    stopTimers.push(s.clock.setTimer(delayMs, () => ctx.self.tell({ local: 'retry', node: state.start!.node, branch: m.branch })));
    return state;
  }
  state.finished = true;
  for (const b of state.branches) b.ref?.stop();
  const error: ErrorInfo = {
    code: m.error.code,
    message: `branch ${m.branch} failed after ${br.attempt} attempt(s): ${m.error.message}`,
    node: state.start!.node,
  };
  nodeEnded(s, state.start!.span, state.start!.node, error);
  await reply(s, state, ctx.path, { error, usage: state.usage });
  return state;
}

/** The swarm node's last word: its output, or (its branches' retries spent) its failure. */
async function reply(
  s: RunServices,
  state: SwarmState,
  path: ActorPath,
  end: { output: NodeOutput; usage: Usage } | { error: ErrorInfo; usage: Usage },
): Promise<void> {
  const st = state.start!;
  const base = { node: st.node, iteration: st.iteration, attempt: st.attempt };
  const body: Typed<'node.completed' | 'node.failed'> =
    'output' in end ? { type: 'node.completed', payload: { ...base, ...end } } : { type: 'node.failed', payload: { ...base, ...end, retryable: false } };
  await s.journal.append(
    [draft({ runId: s.runId, trace: st.span.trace }, { from: path, to: parentOf(path), ...body, causationId: st.env.id, key: `${path}/done` })],
    { stage: true },
  );
}

/** Start branches (their next attempt each): their actors made, their start messages in one append. */
async function startBranches(s: RunServices, state: SwarmState, bs: readonly number[], ctx: ActorContext<ActorMessage>): Promise<void> {
  const st = state.start!;
  const drafts = bs.map((b) => {
    const br = state.branches[b - 1]!;
    br.attempt += 1;
    // One actor per attempt: a late reply from a stopped attempt is recognised by its attempt number.
    const name = executionName(`branch-${b}`, 1, br.attempt);
    // In a cluster the branch runs as a node task on any node.
    const ref = s.remote?.(`${ctx.path}/${name}` as ActorPath) ?? ctx.spawn(name, fromBranch(s));
    s.register(ref);
    br.ref = ref;
    const payload = { node: st.node, branch: b, of: state.branches.length, attempt: br.attempt, context: st.context };
    return draft(
      { runId: s.runId, trace: st.span.trace },
      { from: ctx.path, to: ref.path, type: 'branch.start', payload, causationId: st.env.id, key: `${ref.path}/start` },
    );
  });
  await s.journal.append(drafts, { stage: true });
}

async function retryBranch(s: RunServices, state: SwarmState, b: number, ctx: ActorContext<ActorMessage>): Promise<SwarmState> {
  if (state.finished || !state.branches[b - 1] || state.branches[b - 1]!.done) return state;
  await startBranches(s, state, [b], ctx);
  return state;
}

/** One branch of a swarm: the agent loop with its branch number in the prompt. */
export function fromBranch(s: RunServices): Behaviour<ActorMessage, null> {
  const stop = new AbortController();
  let started = false;
  return {
    initialState: null,
    async receive(state, msg, ctx) {
      if (!isEnvelope(msg) || msg.type !== 'branch.start' || started) return state;
      started = true;
      const m = messagePayload(msg, 'branch.start');
      const node: NodeDef<unknown> = s.def.node(m.node)!;
      const span = nodeSpan(s, msg, { name: 'node.branch', node: m.node, kind: node.agent, attempt: m.attempt, branch: m.branch, actor: ctx.path });
      const effects = new Effects(s, ctx.path, msg.id, m.node, span);
      const base = { node: m.node, branch: m.branch, attempt: m.attempt };
      const send = (body: Typed<'branch.completed' | 'branch.failed'>) =>
        s.journal.append(
          [draft({ runId: s.runId, trace: span.trace }, { from: ctx.path, to: parentOf(ctx.path), ...body, causationId: msg.id, key: `${ctx.path}/done` })],
          { stage: true },
        );
      let failure: ReturnType<typeof errorInfo> | undefined;
      try {
        const output = await guarded(s.clock, node.timeoutSec, stop.signal, (signal) =>
          runAgent({ node, context: m.context, branch: { index: m.branch, of: m.of }, effects, tools: s.tools, signal }),
        );
        if (!stop.signal.aborted) await send({ type: 'branch.completed', payload: { ...base, output, usage: effects.usage } });
      } catch (e) {
        failure = errorInfo(e);
        if (!stop.signal.aborted) await send({ type: 'branch.failed', payload: { ...base, error: failure, usage: effects.usage, retryable: isRetryable(e) } });
      } finally {
        nodeEnded(s, span, m.node, failure ?? (stop.signal.aborted ? { code: 'AO_NODE_CANCELLED', message: 'stopped' } : undefined));
      }
      return state;
    },
    onStop() {
      stop.abort(BRANCH_STOPPED);
    },
    onCrash(err, msg, path) {
      reportCrash(s, err, msg, path);
    },
  };
}
