import { AoError } from '@ao/graphs';
import type { ActorPath, Behaviour, Typed } from '@ao/runtime';
import { log, messagePayload, payloadField } from '@ao/runtime';
import { runAgent } from '../agent-loop/agent-loop.js';
import { guarded, isRetryable } from '../agent-loop/guard.js';
import { Effects, errorInfo } from '../effects/effects.js';
import { draft, isEnvelope } from '../services.js';
import type { ActorMessage, RunServices } from '../services.js';
import { nodeEnded, nodeSpan } from '../telemetry.js';

export const parentOf = (p: ActorPath): ActorPath => p.slice(0, p.lastIndexOf('/')) as ActorPath;

/**
 * A node or branch actor threw outside its own error handling (e.g. a start message it could not
 * read): report it to the parent as a non-retryable failure, so the run never waits on it forever.
 */
export function reportCrash(s: RunServices, err: unknown, msg: ActorMessage, path: ActorPath): void {
  // The run has ended (the actor was unwinding after the stop): there is no one left to tell.
  if (!isEnvelope(msg) || s.journal.ended) return;
  // Whatever the start held (it may be what could not be read): its fields as far as they go.
  const field = (k: string) => payloadField(msg.payload, k);
  const node = String(field('node') ?? '?');
  const rest = {
    attempt: Number(field('attempt') ?? 0),
    error: { code: 'AO_INTERNAL', message: `actor ${path} crashed: ${err instanceof Error ? err.message : String(err)}` },
    usage: {},
    retryable: false,
  };
  const body: Typed<'node.failed' | 'branch.failed'> =
    msg.type === 'branch.start'
      ? { type: 'branch.failed', payload: { node, branch: Number(field('branch') ?? 0), ...rest } }
      : { type: 'node.failed', payload: { node, iteration: Number(field('iteration') ?? 0), ...rest } };
  void s.journal.append([draft(s, { from: path, to: parentOf(path), ...body, causationId: msg.id, key: `${path}/done` })]).catch((e) => {
    if (!s.journal.ended) log.error(`could not report the crash of ${path}`, { component: 'actors', runId: s.runId, err: e });
  });
}

/**
 * A `pipeline` node (also the body of a `supervisor` node): on `node.start` it runs the agent
 * loop once and reports `node.completed` or `node.failed` to the run supervisor, which owns
 * retries. Stopping the actor aborts its in-flight calls. Re-run after a crash from the same
 * start, it replays its recorded effects and reports the same outcome under the same id.
 */
/**
 * Why a stopped node actor's work is aborted: one error for all of them (an error's stack is
 * taken when it is made, and every node actor of every run is stopped once).
 */
const STOPPED = new AoError('AO_NODE_CANCELLED', 'the node actor was stopped');

export function fromPipeline(s: RunServices): Behaviour<ActorMessage, null> {
  const stop = new AbortController();
  let started = false;
  return {
    initialState: null,
    async receive(state, msg, ctx) {
      if (!isEnvelope(msg) || msg.type !== 'node.start') return state;
      const m = messagePayload(msg, 'node.start');
      const node = s.def.node(m.node);
      if (!node) throw new AoError('AO_ENVELOPE_INVALID', `unknown node ${m.node}`, { field: 'payload.node' });
      if (started) return state; // a start delivered twice (recovery re-delivers): run once
      started = true;
      const span = nodeSpan(s, msg, { name: 'node', node: m.node, kind: node.agent, iteration: m.iteration, attempt: m.attempt, actor: ctx.path });
      const effects = new Effects(s, ctx.path, msg.id, m.node, span);
      const base = { node: m.node, iteration: m.iteration, attempt: m.attempt };
      const reply = (body: Typed<'node.completed' | 'node.failed'>) =>
        s.journal.append(
          [draft({ runId: s.runId, trace: span.trace }, { from: ctx.path, to: parentOf(ctx.path), ...body, causationId: msg.id, key: `${ctx.path}/done` })],
          { stage: true },
        );
      let failure: ReturnType<typeof errorInfo> | undefined;
      try {
        const output = await guarded(s.clock, node.timeoutSec, stop.signal, (signal) =>
          runAgent({ node, context: m.context, effects, tools: s.tools, signal, scope: { services: s, path: ctx.path, causationId: msg.id } }),
        );
        if (!stop.signal.aborted) await reply({ type: 'node.completed', payload: { ...base, output, usage: effects.usage } });
      } catch (e) {
        failure = errorInfo(e);
        if (!stop.signal.aborted) await reply({ type: 'node.failed', payload: { ...base, error: failure, usage: effects.usage, retryable: isRetryable(e) } });
      } finally {
        nodeEnded(s, span, m.node, failure ?? (stop.signal.aborted ? { code: 'AO_NODE_CANCELLED', message: 'stopped' } : undefined));
      }
      return state;
    },
    onStop() {
      stop.abort(STOPPED);
    },
    onCrash(err, msg, path) {
      reportCrash(s, err, msg, path);
    },
  };
}
