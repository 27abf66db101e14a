import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graph, RefundApprovalSchema } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { openPgliteStore } from '@ao/runtime';
import type { RunRecord, Store } from '@ao/runtime';
import type { Engine } from '../src/mod.js';
import { allEvents, countingLlm, startNode, until } from './harness.js';

/**
 * A strict (recorded) replay stops at its first divergence: it ends `failed` with
 * AO_REPLAY_DIVERGED at once, and never opens a wait, never sleeps among the waiting runs and
 * never calls a model or a tool (issue 19).
 */

/** `triage-with-approval`, with the approval's prompt given (a changed prompt is a changed decision of the supervisor). */
const triage = (prompt: string) =>
  graph('triage-with-approval')
    .node('classify', { agent: 'supervisor', llm: 'default', instructions: 'Classify the customer request.' })
    .node('refund', {
      agent: 'pipeline',
      tools: ['stripe_refund'],
      instructions: 'Refund the customer charge.',
      approval: { prompt, schema: RefundApprovalSchema, timeoutSec: 3 * 24 * 3600, onTimeout: 'reject' },
    })
    .node('escalate', { agent: 'pipeline', instructions: 'Write a hand-off note for a human agent.' })
    .edge('classify', 'refund', (ctx) => (ctx.input as { intent?: unknown } | undefined)?.intent === 'refund')
    .edge('classify', 'escalate', (ctx) => (ctx.input as { intent?: unknown } | undefined)?.intent !== 'refund')
    .budget({ tokens: 8000, tools: 10, wallClockSec: 60, perTool: { stripe_refund: 1 } }) as GraphBuilder<unknown>;

describe('a diverged strict replay ends at once', () => {
  let store: Store;
  let v1: Engine;
  let v2: Engine;
  const llm = countingLlm();
  let original: RunRecord;
  beforeAll(async () => {
    store = await openPgliteStore();
    v1 = await startNode({ store, nodeId: 'v1', graphs: [triage('Approve this refund?')] });
    // The same graph with another approval prompt: what a deploy that changed it would run.
    v2 = await startNode({ store, nodeId: 'v2', graphs: [triage('Approve this refund (amount checked)?')], llm });
    const run = await v1.startRun({ graph: 'triage-with-approval', input: { intent: 'refund', charge: 'ch_9' } });
    await until(async () => (await store.getRun(run.id))?.status === 'waiting', 'the original to wait for its approval');
    await v1.signal(run.id, { node: 'refund', payload: { approved: true } });
    original = await until(async () => {
      const r = await store.getRun(run.id);
      return r?.status === 'succeeded' ? r : undefined;
    }, 'the original to succeed');
  });
  afterAll(async () => {
    await v1?.shutdown();
    await v2?.shutdown();
    await store?.close();
  });

  /**
   * Replay on `engine` until it ends; the replay is hosted here, so `waitForRun` follows it. "At
   * once" is proven by what the log holds (no wait opened, no tool called), not by a time: a timed
   * bound failed on a loaded machine.
   */
  async function replayed(engine: Engine, req: Parameters<Engine['replay']>[1]): Promise<{ run: RunRecord }> {
    const started = await engine.replay(original.id, req);
    return { run: await engine.waitForRun(started.id, 120_000) };
  }

  async function expectEndedWithoutWaiting(run: RunRecord, calls: number): Promise<void> {
    expect(run.status).toBe('failed');
    expect(run.error?.code).toBe('AO_REPLAY_DIVERGED');
    expect(run.replay?.divergence).not.toBeNull();
    expect(run.error?.details).toEqual(run.replay?.divergence);
    expect(run.waits).toEqual([]);
    expect(run.owner).toBeNull();
    const types = (await allEvents(store, run.id)).map((e) => e.type);
    expect(types).not.toContain('wait.opened');
    expect(types).not.toContain('run.waiting');
    expect(types).not.toContain('tool.call');
    expect(types.filter((t) => t === 'replay.diverged')).toHaveLength(1);
    expect(types.at(-1)).toBe('run.finished');
    const waiting = await store.listRuns({ status: 'waiting', limit: 100 });
    expect(waiting.runs.map((r) => r.id)).not.toContain(run.id);
    expect(llm.calls, 'a recorded replay calls no model').toBe(calls);
    // Still failed a moment later: nothing woke it or left it sleeping.
    await new Promise((r) => setTimeout(r, 100));
    expect((await store.getRun(run.id))?.status).toBe('failed');
  }

  it('diverging at the step that opens the wait (a changed approval prompt), it ends failed with the diff, never waiting', async () => {
    const calls = llm.calls;
    const { run } = await replayed(v2, { fromStep: 1, mode: 'recorded' });
    await expectEndedWithoutWaiting(run, calls);
    const d = run.replay!.divergence!;
    expect(d.actor).toBe('supervisor');
    expect(d.expected).toMatchObject({ type: 'wait.opened' });
    expect(d.actual).toMatchObject({ type: 'wait.opened' });
    expect(d.diff.join('\n')).toContain('payload.prompt: Approve this refund{+ (amount checked)+}?');
  });

  it('diverging before the wait (classify given other instructions), it ends failed at the model request, never waiting', async () => {
    const calls = llm.calls;
    const { run } = await replayed(v1, {
      fromStep: 0,
      mode: 'recorded',
      overrides: { nodes: { classify: { instructions: 'Classify the request, briefly.' } } },
    });
    await expectEndedWithoutWaiting(run, calls);
    const d = run.replay!.divergence!;
    expect(d.actor).toBe('supervisor/classify');
    expect(d.diff[0]).toBe('llm.request changed:');
  });
});
