import { AoError } from '@ao/graphs';
import type { ActorPath, Behaviour } from '@ao/runtime';
import { runAgent } from '../agent-loop/agent-loop.js';
import { guarded, isRetryable } from '../agent-loop/guard.js';
import { Effects, errorInfo } from '../effects/effects.js';
import { parseMessage } from '../messages.js';
import type { Payload } from '../messages.js';
import { isEnvelope } from '../services.js';
import type { ActorMessage, RunServices } from '../services.js';

export const parentOf = (p: ActorPath): ActorPath => p.slice(0, p.lastIndexOf('/')) as ActorPath;

/**
 * A `pipeline` node (also the body of a `supervisor` node): on `node.start` it runs the agent
 * loop once and reports `node.completed` or `node.failed` to the run supervisor, which owns
 * retries. Stopping the actor aborts its in-flight calls.
 */
export function fromPipeline(s: RunServices): Behaviour<ActorMessage, null> {
  const stop = new AbortController();
  return {
    initialState: null,
    async receive(state, msg, ctx) {
      if (!isEnvelope(msg) || msg.type !== 'node.start') return state;
      const m = parseMessage(msg).payload as Payload<'node.start'>;
      const node = s.def.node(m.node);
      if (!node) throw new AoError('AO_ENVELOPE_INVALID', `unknown node ${m.node}`, { field: 'payload.node' });
      const effects = new Effects(s, ctx.path, msg.id);
      const base = { node: m.node, iteration: m.iteration, attempt: m.attempt };
      const reply = (type: string, payload: unknown) =>
        s.journal.append([{ runId: s.runId, from: ctx.path, to: parentOf(ctx.path), type, payload, causationId: msg.id, trace: s.trace }]);
      try {
        const output = await guarded(s.clock, node.timeoutSec, stop.signal, (signal) =>
          runAgent({ node, context: m.context, effects, tools: s.tools, signal }),
        );
        if (!stop.signal.aborted) await reply('node.completed', { ...base, output, usage: effects.usage });
      } catch (e) {
        if (!stop.signal.aborted) await reply('node.failed', { ...base, error: errorInfo(e), usage: effects.usage, retryable: isRetryable(e) });
      }
      return state;
    },
    onStop() {
      stop.abort(new AoError('AO_NODE_CANCELLED', 'the node actor was stopped'));
    },
  };
}
