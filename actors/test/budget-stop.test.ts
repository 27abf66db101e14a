import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { captureLog, logLine } from '@ao/runtime/testing';
import { makeEngine } from './harness.js';

/**
 * Regression: when a swarm ran out of budget, a branch whose budget request could no longer be
 * written (the run was ending) left its reply promise unawaited; the abort then rejected it
 * unhandled, which takes a Node process down. Found by the bench's stop-latency phase.
 */
describe.each(['pglite', 'postgres'] as const)('a swarm stopped by its budget on %s', (kind) => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: unknown) => void unhandled.push(e);
  let h: Awaited<ReturnType<typeof makeEngine>>;
  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    const racing = graph('racing')
      .node('fan', { agent: 'swarm', concurrency: 8, tools: ['noop'], maxTurns: 6 })
      .budget({ tokens: 1500 });
    h = await makeEngine(kind, { graphs: [racing as GraphBuilder<unknown>] });
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await h.close();
  });

  it('ends budget_exceeded every time, stops every actor, and leaves no rejection unhandled', async () => {
    // Regression (seen in the bench): a budget request arriving as the run ended crashed the budget
    // actor ("its log takes no more events"); it now has no one to answer and is dropped quietly.
    const logs = captureLog();
    for (let i = 0; i < 30; i++) {
      const run = await h.engine.startRun({ graph: 'racing', input: { i } });
      const done = await h.engine.waitForRun(run.id, 20_000);
      expect(done.status).toBe('budget_exceeded');
      expect(done.error).toMatchObject({ code: 'AO_BUDGET_EXCEEDED', details: { limit: 'tokens', value: 1500 } });
      expect(h.engine.liveActors(run.id)).toBe(0);
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(unhandled).toEqual([]);
    logs.restore();
    expect(logs.records.filter((r) => r.fields.component === 'actors').map(logLine)).toEqual([]);
  });
});
