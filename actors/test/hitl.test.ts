import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { openPgliteStore } from '@ao/runtime';
import type { Store } from '@ao/runtime';
import { allEvents, countingLlm, startNode, until } from './harness.js';
import type { Engine } from '../src/mod.js';
import { exampleGraphs } from '@ao/graphs';

const ask = graph('hitl-ask')
  .node('draft', { agent: 'pipeline', instructions: 'Draft the reply.', interrupt: { prompt: 'Ask when the customer name is missing.' } })
  .node('send', { agent: 'pipeline', instructions: 'Send it.' })
  .edge('draft', 'send') as GraphBuilder<unknown>;

const timed = graph('hitl-timeout')
  .node('gate', { agent: 'pipeline', approval: { prompt: 'Go?', timeoutSec: 0.2, onTimeout: 'fail' } })
  .budget({ wallClockSec: 30 }) as GraphBuilder<unknown>;

const soft = graph('hitl-soft')
  .node('a', { agent: 'pipeline', instructions: 'Step a.' })
  .node('b', { agent: 'pipeline', instructions: 'Step b.' })
  .node('c', { agent: 'pipeline', instructions: 'Step c.' })
  .edge('a', 'b')
  .edge('b', 'c')
  .budget({ tokens: 100_000, soft: { tokens: 1200 } }) as GraphBuilder<unknown>;

const counted = graph('hitl-counted')
  .node('gate', { agent: 'pipeline', approval: { prompt: 'Go?', countWallClock: true } })
  .budget({ wallClockSec: 0.5 }) as GraphBuilder<unknown>;

const graphs = [...(exampleGraphs as readonly GraphBuilder<unknown>[]), ask, timed, soft, counted];

describe('human in the loop', () => {
  let store: Store;
  let engine: Engine;
  const llm = countingLlm();
  beforeAll(async () => {
    store = await openPgliteStore();
    engine = await startNode({ store, nodeId: 'a', llm, graphs, leaseMs: 600 });
  });
  afterAll(async () => {
    await engine?.shutdown();
    await store?.close();
  });

  const waiting = (id: string) =>
    until(
      async () => ((await store.getRun(id))?.status === 'waiting' && engine.activeRuns().every((r) => r !== id) ? store.getRun(id) : undefined),
      `run ${id} asleep`,
    );

  it('an approval before a node passivates the run (no actor, no lease) and an approving answer resumes it to the refund', async () => {
    const run = await engine.startRun({ graph: 'triage-with-approval', input: { intent: 'refund', charge: 'ch_1' } });
    const asleep = await waiting(run.id);
    expect(asleep!.owner).toBeNull();
    expect(asleep!.waits).toHaveLength(1);
    expect(asleep!.waits[0]).toMatchObject({ id: 'approval/refund/1', node: 'refund', kind: 'approval', prompt: 'Approve this refund?' });
    expect(asleep!.nodes.refund!.status).toBe('waiting');
    expect(engine.liveActors(run.id)).toBe(0);
    const types = (await allEvents(store, run.id)).map((e) => e.type);
    expect(types).toContain('wait.opened');
    expect(types.at(-1)).toBe('run.waiting');
    expect(types).not.toContain('tool.call');
    // Its wall-clock budget stopped when it went to sleep: what it counted stands still while it sleeps.
    const slept = await allEvents(store, run.id);
    const at = (evs: typeof slept, type: string) => Date.parse(evs.find((e) => e.type === type)!.time);
    expect((await engine.usage(run.id))!.wallClock).toMatchObject({ usedMs: at(slept, 'run.waiting') - at(slept, 'run.started'), paused: true });

    const res = await engine.signal(run.id, { node: 'refund', payload: { approved: true, amount: 5, comment: 'ok' } });
    expect(res.duplicate).toBe(false);
    expect(res.wait?.id).toBe('approval/refund/1');
    // A double click: the same wait answered again is a no-op.
    const again = await engine.signal(run.id, { node: 'refund', waitId: 'approval/refund/1', payload: { approved: false } });
    expect(again.duplicate).toBe(true);
    expect(again.signal.id).toBe(res.signal.id);

    const done = await until(async () => {
      const r = await store.getRun(run.id);
      return r && r.status === 'succeeded' ? r : undefined;
    }, 'run to succeed');
    expect(done.waits).toEqual([]);
    // The answer was taken in the commit that resolved its wait.
    expect(await store.pendingSignals(run.id)).toEqual([]);
    const evs = await allEvents(store, run.id);
    expect(evs.filter((e) => e.type === 'tool.call' && (e.payload as { name: string }).name === 'stripe_refund')).toHaveLength(1);
    const resolved = evs.find((e) => e.type === 'wait.resolved')!;
    expect(resolved.payload).toMatchObject({ wait: 'approval/refund/1', approved: true, outcome: { kind: 'signal', payload: { approved: true, amount: 5 } } });
    expect(evs.filter((e) => e.type === 'run.resumed')).toHaveLength(1);
    // The wall clock the budget counted: the run's time less its sleep, as its deadline was moved.
    const resumed = evs.find((e) => e.type === 'run.resumed')!.payload as { pausedMs: number; wallClockPaused: boolean };
    expect(resumed.wallClockPaused).toBe(true);
    expect((await engine.usage(run.id))!.wallClock).toEqual({
      usedMs: at(evs, 'run.finished') - at(evs, 'run.started') - resumed.pausedMs,
      pausedMs: resumed.pausedMs,
      paused: false,
    });
    // classify ran once: nothing before the wait ran again.
    expect(evs.filter((e) => e.type === 'node.start' && (e.payload as { node: string }).node === 'classify')).toHaveLength(1);
    // The person's answer reached the refund node's prompt.
    const refundPrompt = evs.find((e) => e.type === 'llm.request' && e.from === 'supervisor/refund')!;
    expect(JSON.stringify(refundPrompt.payload)).toContain('A person approved this step');
    // Gapless log.
    expect(evs.map((e) => e.seq)).toEqual(evs.map((_, i) => i + 1));
  });

  it('a rejecting answer skips the refund (no stripe_refund call) and the run succeeds', async () => {
    const run = await engine.startRun({ graph: 'triage-with-approval', input: { intent: 'refund', charge: 'ch_2' } });
    await waiting(run.id);
    await engine.signal(run.id, { node: 'refund', payload: { approved: false, comment: 'fraud' } });
    const done = await until(async () => {
      const r = await store.getRun(run.id);
      return r && r.status === 'succeeded' ? r : undefined;
    }, 'run to end');
    expect(done.nodes.refund!.status).toBe('skipped');
    const evs = await allEvents(store, run.id);
    expect(evs.some((e) => e.type === 'tool.call')).toBe(false);
    expect(evs.find((e) => e.type === 'node.skipped' && (e.payload as { node: string }).node === 'refund')!.payload).toMatchObject({
      node: 'refund',
      reason: 'a person rejected it',
    });
  });

  it('a wrong answer is refused with the field, and an answer to a run that waits for nothing is AO_RUN_NOT_WAITING', async () => {
    const run = await engine.startRun({ graph: 'triage-with-approval', input: { intent: 'refund' } });
    await waiting(run.id);
    await expect(engine.signal(run.id, { node: 'refund', payload: { approved: 'yes' } })).rejects.toMatchObject({
      code: 'AO_VALIDATION',
      field: 'payload.approved',
    });
    await expect(engine.signal(run.id, { node: 'escalate', payload: { approved: true } })).rejects.toMatchObject({ code: 'AO_RUN_NOT_WAITING' });
    await engine.signal(run.id, { node: 'refund', payload: { approved: true } });
    await until(async () => (await store.getRun(run.id))?.status === 'succeeded', 'run to end');
    await expect(engine.signal(run.id, { node: 'refund', payload: { approved: true } })).rejects.toMatchObject({ code: 'AO_RUN_NOT_WAITING' });
  });

  it('an answer that comes before the wait is kept and taken when the wait opens: the run never sleeps', async () => {
    const slow = countingLlm(300);
    const other = await startNode({ store, nodeId: 'early', llm: slow, graphs, leaseMs: 600 });
    try {
      const run = await other.startRun({ graph: 'triage-with-approval', input: { intent: 'refund' } });
      const early = await other.signal(run.id, { node: 'refund', payload: { approved: true } });
      expect(early.wait).toBeNull();
      const done = await other.waitForRun(run.id);
      expect(done.status).toBe('succeeded');
      const types = (await allEvents(store, run.id)).map((e) => e.type);
      expect(types).toContain('wait.resolved');
      expect(types).not.toContain('run.waiting');
    } finally {
      await other.shutdown();
    }
  });

  it("an agent's question passivates the run; the answer is the ask_human result and nothing before it runs again", async () => {
    const before = llm.calls;
    const run = await engine.startRun({ graph: 'hitl-ask', input: { ticket: 't1' } });
    const asleep = await waiting(run.id);
    const w = asleep!.waits[0]!;
    expect(w).toMatchObject({ node: 'draft', kind: 'interrupt', actor: 'supervisor/draft' });
    const callsAtWait = llm.calls - before;
    await engine.signal(run.id, { node: 'draft', waitId: w.id, payload: { answer: 'Ada Lovelace' } });
    const done = await until(async () => {
      const r = await store.getRun(run.id);
      return r && r.status === 'succeeded' ? r : undefined;
    }, 'run to end');
    expect(done.output).toBeTruthy();
    const evs = await allEvents(store, run.id);
    // The first model call (which asked) was read back from the log, not made again.
    const draftRequests = evs.filter((e) => e.type === 'llm.request' && e.from === 'supervisor/draft');
    expect(draftRequests).toHaveLength(2);
    expect(llm.calls - before).toBe(callsAtWait + 2); // draft's second turn and send
    expect(JSON.stringify(draftRequests[1]!.payload)).toContain('Ada Lovelace');
  });

  it('a wait that times out with onTimeout fail ends the run failed with AO_WAIT_TIMED_OUT, woken by the claim loop', async () => {
    const run = await engine.startRun({ graph: 'hitl-timeout' });
    const done = await until(async () => {
      const r = await store.getRun(run.id);
      return r && r.status === 'failed' ? r : undefined;
    }, 'run to time out');
    expect(done.error).toMatchObject({ code: 'AO_WAIT_TIMED_OUT', node: 'gate' });
  });

  it('cancelling a sleeping run ends it cancelled', async () => {
    const run = await engine.startRun({ graph: 'triage-with-approval', input: { intent: 'refund' } });
    await waiting(run.id);
    const r = await engine.cancel(run.id);
    expect(r.status).toBe('cancelled');
    expect(r.waits).toEqual([]);
  });

  describe('budget escalation at a soft limit', () => {
    it('the run waits instead of dying; a grant raises the soft limit and the held call goes on', async () => {
      const run = await engine.startRun({ graph: 'hitl-soft' });
      const asleep = await waiting(run.id);
      const w = asleep!.waits[0]!;
      expect(w).toMatchObject({ kind: 'budget', id: 'budget/tokens/1200', node: 'b', payload: { limit: 'tokens', value: 1200, hard: 100_000 } });
      await engine.signal(run.id, { node: w.node, waitId: w.id, payload: { decision: 'grant', tokens: 100_000 } });
      const done = await until(async () => {
        const r = await store.getRun(run.id);
        return r && r.status === 'succeeded' ? r : undefined;
      }, 'run to succeed');
      expect(done.usage.llmCalls).toBe(3);
      const evs = await allEvents(store, run.id);
      expect(evs.find((e) => e.type === 'budget.raised')!.payload).toMatchObject({ soft: { tokens: 100_000 } });
      // The hard limit never moved and nothing was refused.
      expect(evs.some((e) => e.type === 'budget.refused')).toBe(false);
    });

    it('a denial ends the run budget_exceeded with the soft limit named', async () => {
      const run = await engine.startRun({ graph: 'hitl-soft' });
      const w = (await waiting(run.id))!.waits[0]!;
      await engine.signal(run.id, { node: w.node, payload: { decision: 'deny', comment: 'too expensive' } });
      const done = await until(async () => {
        const r = await store.getRun(run.id);
        return r && r.status === 'budget_exceeded' ? r : undefined;
      }, 'run to end');
      expect(done.error).toMatchObject({ code: 'AO_BUDGET_EXCEEDED', details: { limit: 'tokens', value: 1200, soft: true, decision: 'deny' } });
    });

    it('a fork ends the run and goes on in a new run from its latest step with the new budget', async () => {
      const run = await engine.startRun({ graph: 'hitl-soft' });
      const w = (await waiting(run.id))!.waits[0]!;
      await engine.signal(run.id, { node: w.node, payload: { decision: 'fork', budget: { tokens: 50_000, soft: { tokens: 40_000 } } } });
      const done = await until(async () => {
        const r = await store.getRun(run.id);
        return r && r.status === 'budget_exceeded' ? r : undefined;
      }, 'run to end');
      const forkedTo = (done.error!.details as { forkedTo: string }).forkedTo;
      expect(forkedTo).toBeTruthy();
      const fork = await until(async () => {
        const r = await store.getRun(forkedTo);
        return r && r.status === 'succeeded' ? r : undefined;
      }, 'fork to succeed');
      expect(fork.replay).toMatchObject({ of: run.id, overrides: { budget: { tokens: 50_000, soft: { tokens: 40_000 } } } });
      expect(fork.budget).toMatchObject({ tokens: 50_000, soft: { tokens: 40_000 } });
      // The fork went on from where the original stopped: node a's answer was inherited, not asked again.
      const forkEvents = await allEvents(store, forkedTo);
      expect(forkEvents.some((e) => e.type === 'llm.request' && e.from === 'supervisor/a')).toBe(false);
      expect(forkEvents.filter((e) => e.type === 'node.completed').map((e) => (e.payload as { node: string }).node)).toEqual(['b', 'c']);
    });

    it('an answer that is not a budget decision is refused with the field', async () => {
      const run = await engine.startRun({ graph: 'hitl-soft' });
      const w = (await waiting(run.id))!.waits[0]!;
      await expect(engine.signal(run.id, { node: w.node, payload: { decision: 'more please' } })).rejects.toMatchObject({
        code: 'AO_VALIDATION',
        field: 'payload.decision',
      });
      // Decisions that could not work are refused at the door, not found out by the run.
      await expect(engine.signal(run.id, { node: w.node, payload: { decision: 'grant', usd: 5 } })).rejects.toMatchObject({
        code: 'AO_VALIDATION',
        field: 'payload.usd',
      });
      await expect(engine.signal(run.id, { node: w.node, payload: { decision: 'fork', budget: { tokens: 'lots' } } })).rejects.toMatchObject({
        code: 'AO_VALIDATION',
        field: 'payload.budget.tokens',
      });
      expect((await store.getRun(run.id))!.status).toBe('waiting');
      await engine.cancel(run.id);
    });
  });

  it('an answer given through another node of the cluster resumes the run there', async () => {
    const b = await startNode({ store, nodeId: 'b', llm, graphs, leaseMs: 600 });
    try {
      const run = await engine.startRun({ graph: 'triage-with-approval', input: { intent: 'refund' } });
      await waiting(run.id);
      await b.signal(run.id, { node: 'refund', payload: { approved: true } });
      const done = await until(async () => {
        const r = await store.getRun(run.id);
        return r && r.status === 'succeeded' ? r : undefined;
      }, 'run to succeed');
      expect(done.nodes.refund!.status).toBe('succeeded');
      // Node b woke it and hosted it to the end; node a never took it back.
      expect((await b.nodes())[0]!.runsHosted).toBe(1);
      expect(engine.activeRuns()).not.toContain(run.id);
    } finally {
      await b.shutdown();
    }
  });

  it('a timed-out waiting run claimed by a node that died before resuming it is claimed again once that lease lapses', async () => {
    const own = await openPgliteStore();
    const first = await startNode({ store: own, nodeId: 'first', llm, graphs, leaseMs: 600, claimIntervalMs: 60_000 });
    let second: Engine | undefined;
    try {
      const run = await first.startRun({ graph: 'hitl-timeout' });
      await until(async () => ((await own.getRun(run.id))?.status === 'waiting' && first.activeRuns().length === 0) || undefined, 'run asleep');
      await first.shutdown();
      await new Promise((r) => setTimeout(r, 300)); // its wait times out
      // A node claims it (status still waiting) and dies before its first step.
      const claimed = await own.claimRuns({ owner: 'dead', leaseMs: 50, limit: 10, reclaimOwn: false, exclude: [] });
      expect(claimed.map((r) => [r.id, r.status, r.owner])).toEqual([[run.id, 'waiting', 'dead']]);
      second = await startNode({ store: own, nodeId: 'second', llm, graphs, leaseMs: 600, claimIntervalMs: 100 });
      const done = await until(async () => {
        const r = await own.getRun(run.id);
        return r && r.status === 'failed' ? r : undefined;
      }, 'run to time out on the second node');
      expect(done.error?.code).toBe('AO_WAIT_TIMED_OUT');
    } finally {
      await second?.shutdown();
      await first.shutdown();
      await own.close();
    }
  });

  it('a wait that counts the wall clock ends a sleeping run budget_exceeded when the clock runs out; others do not', async () => {
    const run = await engine.startRun({ graph: 'hitl-counted' });
    const asleep = await waiting(run.id);
    expect(asleep!.wakeAt).not.toBeNull();
    const done = await until(async () => {
      const r = await store.getRun(run.id);
      return r && r.status === 'budget_exceeded' ? r : undefined;
    }, 'run to run out of wall clock');
    expect(done.error).toMatchObject({ code: 'AO_BUDGET_EXCEEDED', details: { limit: 'wallClockSec' } });
    // triage-with-approval has a 60 s wall clock that waiting does not use: its wake-up is its 3-day timeout.
    const other = await engine.startRun({ graph: 'triage-with-approval', input: { intent: 'refund' } });
    const w = await waiting(other.id);
    expect(Date.parse(w!.wakeAt!) - Date.now()).toBeGreaterThan(2 * 24 * 3600 * 1000);
    await engine.cancel(other.id);
  });
});
