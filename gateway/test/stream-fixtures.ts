import { z } from 'zod';
import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { defineTool } from '@ao/runtime';
import type { LlmPort } from '@ao/runtime';

/** Tools each branch of {@link fanout} calls (the offline model calls every offered tool once). */
export const probes = Array.from({ length: 40 }, (_, i) =>
  defineTool({
    name: `probe_${i}`,
    description: `Probe ${i}: does nothing and returns { ok: true }.`,
    effect: 'pure',
    input: z.looseObject({}),
    async handler() {
      return { ok: true as const, probe: i };
    },
  }),
);

/** Branches per swarm of {@link fanout}: three swarms of 16 make a run of about 10,000 envelopes. */
export const FANOUT_BRANCHES = 16;

/**
 * A long run for the stream and inspector tests: three swarms side by side, each of 16 branches
 * that call 40 tools (one after the other) and the model, about 10,000 envelopes in all. Many
 * envelopes per branch rather than many branches: a run's budget actor answers one request at a
 * time, and hundreds of branches asking at once on a loaded machine (CI runs two test files at a
 * time on two cores) wait past its 10 s answer deadline and fail the run (AO_BUDGET_UNAVAILABLE).
 */
const swarm = { agent: 'swarm', concurrency: FANOUT_BRANCHES, tools: probes.map((t) => t.name), instructions: 'Fan out.' } as const;
export const fanout = graph('fanout-10k')
  .node('fan-a', swarm)
  .node('fan-b', swarm)
  .node('fan-c', swarm)
  .budget({ tokens: 100_000_000, tools: 10_000, wallClockSec: 600 });

/** For `AO_GRAPHS` (the browser tests' real server loads this module). */
export const graphs = [fanout] as GraphBuilder<unknown>[];
export const tools = probes;

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
