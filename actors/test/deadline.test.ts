import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { defineTool, openPgliteStore } from '@ao/runtime';
import type { Store } from '@ao/runtime';
import { allEvents, startNode, toolsWith, until } from './harness.js';

/** A tool that waits until aborted (or 30 s): a call that outlives any deadline. */
const stall = defineTool({
  name: 'stall',
  description: 'Wait a long time.',
  effect: 'idempotent',
  input: z.object({}).passthrough(),
  handler: (_args, ctx) =>
    new Promise((resolve, reject) => {
      const t = setTimeout(() => resolve({ waited: true }), 30_000);
      ctx.signal.addEventListener('abort', () => (clearTimeout(t), reject(ctx.signal.reason)), { once: true });
    }),
});

const slow = graph('slow-clock')
  .node('wait', { agent: 'pipeline', tools: ['stall'], args: () => ({ stall: {} }) })
  .budget({ wallClockSec: 1.5 }) as GraphBuilder<unknown>;

describe('the wall-clock deadline', () => {
  let store: Store;
  beforeAll(async () => {
    store = await openPgliteStore();
  });
  afterAll(async () => store.close());

  it('stops a run waiting on a slow tool at its deadline, counted from the start even across a handover', async () => {
    const a = await startNode({ store, nodeId: 'a', graphs: [slow], tools: toolsWith(stall) });
    const run = await a.startRun({ graph: 'slow-clock' });
    const started = Date.now();
    await until(async () => (await allEvents(store, run.id)).some((e) => e.type === 'tool.call'), 'the tool call');
    await new Promise((r) => setTimeout(r, 500));
    await a.shutdown(); // handover half way to the deadline
    const b = await startNode({ store, nodeId: 'b', graphs: [slow], tools: toolsWith(stall), claimIntervalMs: 100 });
    try {
      const done = await until(async () => {
        const r = await store.getRun(run.id);
        return r && r.status !== 'running' && r.status !== 'pending' ? r : undefined;
      }, 'the run to end');
      const elapsed = (Date.now() - started) / 1000;
      expect(done.status).toBe('budget_exceeded');
      expect(done.error).toMatchObject({ code: 'AO_BUDGET_EXCEEDED', details: { limit: 'wallClockSec', value: 1.5, actor: 'supervisor' } });
      // Not 1.5 s after the resume: the deadline was fixed when the run started.
      expect(elapsed).toBeLessThan(1.5 + 1.2);
      expect(b.liveActors(run.id)).toBe(0);
      const events = await allEvents(store, run.id);
      expect(events.at(-1)!.type).toBe('run.finished');
    } finally {
      await b.shutdown();
    }
  });
});
