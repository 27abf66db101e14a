import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleGraphs, graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import type { RunRecord } from '@ao/runtime';
import { Verifier } from '../src/mod.js';
import { allEvents, countingLlm, makeEngine, toolsWith, until } from './harness.js';

/**
 * `Verifier`, the core of `ao verify`: finished runs replayed from their start in recorded mode
 * against the graphs given now, on a scratch store in memory; nothing is written to the store the
 * runs came from and no model is called.
 */
describe('verifying recorded runs', () => {
  let h: Awaited<ReturnType<typeof makeEngine>>;
  const llm = countingLlm();
  const runs: Record<string, RunRecord> = {};
  beforeAll(async () => {
    h = await makeEngine('pglite', { llm });
    const done = async (graphName: string, input: unknown) => h.engine.waitForRun((await h.engine.startRun({ graph: graphName, input })).id);
    runs.refund = await done('triage', { intent: 'refund' });
    runs.swarm = await done('research-swarm', { topic: 'verification' });
    const { id } = await h.engine.startRun({ graph: 'triage-with-approval', input: { intent: 'refund' } });
    await until(async () => (await h.store.getRun(id))?.status === 'waiting', 'the approval');
    runs.waiting = (await h.store.getRun(id))!;
    await h.engine.signal(id, { node: 'refund', payload: { approved: true } });
    runs.approved = await until(async () => {
      const r = await h.store.getRun(id);
      return r?.status === 'succeeded' ? r : undefined;
    }, 'the approved run');
  }, 60_000);
  afterAll(() => h.close());

  const verdict = async (v: Verifier, run: RunRecord) => v.verify(run, await allEvents(h.store, run.id));

  it('a run replayed against the graphs that recorded it is identical, approvals included, without a model call or a write to its store', async () => {
    const v = new Verifier({ graphs: exampleGraphs as readonly GraphBuilder<unknown>[], tools: toolsWith() });
    try {
      const calls = llm.calls;
      const before = (await h.store.listRuns({ limit: 100 })).runs.length;
      for (const name of ['refund', 'swarm', 'approved']) {
        const r = await verdict(v, runs[name]!);
        expect(r, name).toMatchObject({
          run: runs[name]!.id,
          outcome: 'identical',
          status: 'succeeded',
          version: { recorded: runs[name]!.graphVersion, current: runs[name]!.graphVersion },
        });
        expect(r.events).toBe((await allEvents(h.store, runs[name]!.id)).length);
      }
      expect(llm.calls).toBe(calls);
      expect((await h.store.listRuns({ limit: 100 })).runs.length).toBe(before);
      // The same run again: the scratch store forgot it after its verdict.
      expect((await verdict(v, runs.refund!)).outcome).toBe('identical');
    } finally {
      await v.close();
    }
  });

  it('against a changed graph the verdict is the first divergence (step, actor, diff) and names both versions', async () => {
    const changed = graph('triage')
      .node('classify', { agent: 'supervisor', llm: 'default', instructions: 'Classify the customer request.' })
      .node('refund', { agent: 'pipeline', tools: ['stripe_refund'], instructions: 'Refund the charge at once.' })
      .node('escalate', { agent: 'pipeline', instructions: 'Write a hand-off note for a human agent.' })
      .edge('classify', 'refund', (ctx) => (ctx.input as { intent?: unknown } | undefined)?.intent === 'refund')
      .edge('classify', 'escalate', (ctx) => (ctx.input as { intent?: unknown } | undefined)?.intent !== 'refund')
      .budget({ tokens: 8000, tools: 10, wallClockSec: 60, perTool: { stripe_refund: 1 } })
      .compatibleWith(runs.refund!.graphVersion) as GraphBuilder<unknown>;
    const v = new Verifier({ graphs: [changed], tools: toolsWith() });
    try {
      const r = await verdict(v, runs.refund!);
      expect(r.outcome).toBe('diverged');
      expect(r.version).toEqual({ recorded: runs.refund!.graphVersion, current: changed.build().version, compatible: true });
      expect(r.divergence).toMatchObject({ actor: 'supervisor/refund', expected: { type: 'llm.request' }, actual: { type: 'llm.request' } });
      expect(r.divergence!.diff.join('\n')).toContain('Refund the charge at once.');
      // Not registered here, or not finished: not verified, with the reason.
      expect(await verdict(v, runs.swarm!)).toMatchObject({ outcome: 'error', error: { code: 'AO_GRAPH_NOT_FOUND' } });
      expect(await verdict(new Verifier({ graphs: exampleGraphs as readonly GraphBuilder<unknown>[], tools: toolsWith() }), runs.waiting!)).toMatchObject({
        outcome: 'error',
        error: { code: 'AO_VALIDATION' },
      });
    } finally {
      await v.close();
    }
  });
});
