import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { RunJournal } from '@ao/runtime';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeEngine } from './harness.js';

/** How a swarm's branches reach the journal. */
describe('a swarm on PGlite', () => {
  const fan = graph('fan-16')
    .node('fan', { agent: 'swarm', concurrency: 16, tools: ['noop'], args: () => ({ noop: {} }), instructions: 'One branch.' })
    .budget({ tokens: 1_000_000, tools: 1_000 }) as GraphBuilder<unknown>;
  let h: Awaited<ReturnType<typeof makeEngine>>;
  beforeAll(async () => {
    h = await makeEngine('pglite', { graphs: [fan] });
  });
  afterAll(() => h?.close());

  it('starts its branches in one append: in a cluster, where each start goes to a node task and commits at once, that is one commit, not one a branch', async () => {
    const append = vi.spyOn(RunJournal.prototype, 'append');
    try {
      const run = await h.engine.startRun({ graph: 'fan-16', input: {} });
      expect((await h.engine.waitForRun(run.id)).status).toBe('succeeded');
      const starts = append.mock.calls.map(([drafts]) => drafts.filter((d) => d.type === 'branch.start').length).filter((n) => n > 0);
      expect(starts).toEqual([16]);
    } finally {
      append.mockRestore();
    }
  });
});
