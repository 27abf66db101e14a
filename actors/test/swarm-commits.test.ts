import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { RunJournal } from '@ao/runtime';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { makeEngine } from './harness.js';

/**
 * How a swarm's branches reach the journal. On PGlite a commit runs without yielding and the
 * budget actor decides one request a turn, so each branch's intent used to commit on its own (35
 * commits for 16 branches, W2): the journal's batch window lets them meet in a few commits.
 */
describe('a swarm on PGlite', () => {
  const fan = graph('fan-16')
    .node('fan', { agent: 'swarm', concurrency: 16, tools: ['noop'], args: () => ({ noop: {} }), instructions: 'One branch.' })
    .budget({ tokens: 1_000_000, tools: 1_000 }) as GraphBuilder<unknown>;
  let h: Awaited<ReturnType<typeof makeEngine>>;
  beforeAll(async () => {
    h = await makeEngine('pglite', { graphs: [fan] });
  });
  afterAll(() => h?.close());

  it("commits its 16 branches' calls together, not one branch a commit, and logs every envelope of them", async () => {
    const was = RunJournal.afterCommit;
    let commits = 0;
    let envelopes = 0;
    RunJournal.afterCommit = (n) => {
      commits++;
      envelopes += n;
    };
    try {
      const run = await h.engine.startRun({ graph: 'fan-16', input: {} });
      expect((await h.engine.waitForRun(run.id)).status).toBe('succeeded');
      const events = await h.store.listEvents(run.id, { limit: 1000 });
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
      expect(events.filter((e) => e.type === 'tool.call')).toHaveLength(16);
      expect(events.filter((e) => e.type === 'llm.request')).toHaveLength(16);
      expect(envelopes).toBe(events.length);
    } finally {
      RunJournal.afterCommit = was;
    }
    // Two durability points a branch (its tool call's intent, its model call's): 32 commits and
    // more when each commits alone.
    expect(commits).toBeLessThan(16);
  });

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
