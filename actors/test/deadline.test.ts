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

/** Long enough that a node's start, claim and hosting (slow on a loaded machine) fit well inside it. */
const WALL_CLOCK_SEC = 3;

const slow = graph('slow-clock')
  .node('wait', { agent: 'pipeline', tools: ['stall'], args: () => ({ stall: {} }) })
  .budget({ wallClockSec: WALL_CLOCK_SEC }) as GraphBuilder<unknown>;

describe('the wall-clock deadline', () => {
  let store: Store;
  beforeAll(async () => {
    store = await openPgliteStore();
  });
  afterAll(async () => store.close());

  it('stops a run waiting on a slow tool at its deadline, counted from the start even across a handover', async () => {
    const a = await startNode({ store, nodeId: 'a', graphs: [slow], tools: toolsWith(stall) });
    const run = await a.startRun({ graph: 'slow-clock' });
    await until(async () => (await allEvents(store, run.id)).some((e) => e.type === 'tool.call'), 'the tool call');
    await new Promise((r) => setTimeout(r, 1_000));
    await a.shutdown(); // handover part way to the deadline (or past it, on a slow day: the run then ends at once)
    const resumedAt = Date.now();
    const b = await startNode({ store, nodeId: 'b', graphs: [slow], tools: toolsWith(stall), claimIntervalMs: 100 });
    try {
      const done = await until(
        async () => {
          const r = await store.getRun(run.id);
          return r && r.status !== 'running' && r.status !== 'pending' ? r : undefined;
        },
        'the run to end',
        50_000,
      );
      expect(done.status).toBe('budget_exceeded');
      expect(done.error).toMatchObject({ code: 'AO_BUDGET_EXCEEDED', details: { limit: 'wallClockSec', value: WALL_CLOCK_SEC, actor: 'supervisor' } });
      // Fixed when the run started, not counted again from the resume: a deadline counted from
      // the resume could not end the run before `resumedAt` + the limit. (Compared with the
      // handover, not with a duration: how long anything takes on this machine does not matter
      // unless node b's start, claim and stop take the whole limit.)
      expect(Date.parse(done.finishedAt!)).toBeLessThan(resumedAt + WALL_CLOCK_SEC * 1000);
      expect(Date.parse(done.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(done.createdAt) + WALL_CLOCK_SEC * 1000);
      expect(b.liveActors(run.id)).toBe(0);
      const events = await allEvents(store, run.id);
      expect(events.at(-1)!.type).toBe('run.finished');
    } finally {
      await b.shutdown();
    }
  });
});
