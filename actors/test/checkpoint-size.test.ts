import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import type { CheckpointSummary } from '@ao/runtime';
import { makeEngine } from './harness.js';
import type { Engine } from '../src/mod.js';

/** start -> body -> check, with a back edge check -> body taken until body has run `n` times. */
const loopGraph = (n: number) =>
  graph(`loop-${n}`)
    .node('start', { agent: 'pipeline', instructions: 'Set the task.' })
    .node('body', { agent: 'pipeline', maxIterations: n, instructions: 'Do one more pass.' })
    .node('check', { agent: 'pipeline', instructions: 'Check the pass.' })
    .node('end', { agent: 'pipeline', instructions: 'Wrap up.' })
    .edge('start', 'body')
    .edge('body', 'check')
    .edge('check', 'body', () => true)
    .edge('check', 'end', (ctx) => (ctx.iterations.body ?? 0) >= n) as GraphBuilder<unknown>;

describe('checkpoint size', () => {
  let engine: Engine;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ engine, close } = await makeEngine('pglite', { graphs: [loopGraph(5), loopGraph(50)] }));
  });
  afterAll(async () => close?.());

  async function runLoop(n: number): Promise<CheckpointSummary[]> {
    const run = await engine.startRun({ graph: `loop-${n}`, input: { topic: 'flat checkpoints' } });
    const done = await engine.waitForRun(run.id, 30_000);
    expect(done.status).toBe('succeeded');
    expect(done.nodes.body).toMatchObject({ status: 'succeeded', iteration: n });
    expect(done.nodes.end).toMatchObject({ status: 'succeeded', iteration: 1 });
    return engine.queries.listCheckpoints(run.id);
  }

  it('stays flat when a looping graph runs 10x longer: 10x the checkpoints, the same largest size', async () => {
    const short = await runLoop(5);
    const long = await runLoop(50);
    const max = (cps: CheckpointSummary[]) => Math.max(...cps.map((c) => c.sizeBytes));

    // One checkpoint per step: the long run has about ten times as many...
    expect(long.length).toBeGreaterThanOrEqual(2 * 50);
    expect(long.length / short.length).toBeGreaterThan(7);
    // ...but each holds the state at a step, not the history: the largest and the last are no bigger
    // (a few digits of iteration counters and "iteration 50" in the outputs aside).
    expect(max(long)).toBeLessThanOrEqual(max(short) * 1.1);
    expect(max(long) - max(short)).toBeLessThan(300);
    expect(long.at(-1)!.sizeBytes - short.at(-1)!.sizeBytes).toBeLessThan(300);
    // And within the long run, the size does not creep up from the first loop pass to the last.
    const passes = long.filter((c) => c.node === 'check');
    expect(passes.at(-1)!.sizeBytes - passes[0]!.sizeBytes).toBeLessThan(300);
  });
});
