import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import type { LlmPort } from '@ao/runtime';

/** Branches per swarm of {@link fanout}: three swarms of 197 make a run of 10,055 envelopes. */
export const FANOUT_BRANCHES = 197;

/**
 * A long run for the stream and inspector tests: three swarms side by side, each of 197 branches
 * that call the `noop` tool and the model, about 10,000 envelopes (7 MB of JSON) in all.
 */
export const fanout = graph('fanout-10k')
  .node('fan-a', { agent: 'swarm', concurrency: FANOUT_BRANCHES, tools: ['noop'], instructions: 'Fan out.' })
  .node('fan-b', { agent: 'swarm', concurrency: FANOUT_BRANCHES, tools: ['noop'], instructions: 'Fan out.' })
  .node('fan-c', { agent: 'swarm', concurrency: FANOUT_BRANCHES, tools: ['noop'], instructions: 'Fan out.' })
  .budget({ tokens: 100_000_000, tools: 10_000, wallClockSec: 600 });

/** For `AO_GRAPHS` (the browser tests' real server loads this module). */
export const graphs = [fanout] as GraphBuilder<unknown>[];

/** A model whose calls for `node` wait until `open()` is called: holds a run at a known point. */
export function gatedLlm(inner: LlmPort, node: string): LlmPort & { open(): void; reached: Promise<void> } {
  let open!: () => void;
  let reach!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const reached = new Promise<void>((r) => (reach = r));
  return {
    provider: inner.provider,
    open,
    reached,
    async complete(req, signal) {
      const first = req.messages.find((m) => m.role === 'user')?.content ?? '';
      if (first.startsWith(`Node: ${node} `)) {
        reach();
        await gate;
      }
      return inner.complete(req, signal);
    },
  };
}
