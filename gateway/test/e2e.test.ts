import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graph, MAX_DRAFTS } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { OfflineLlm } from '@ao/runtime';
import type { Envelope, LlmPort } from '@ao/runtime';
import { natsAvailable, postgresAvailable } from '@ao/runtime/testing';
import { concurrencyProbe, testGateway } from './harness.js';
import type { StoreKind, TestGateway } from './harness.js';

const pgUp = await postgresAvailable();
const natsUp = pgUp && (await natsAvailable());
/** Whether a suite of this kind can run here (under CI every kind must). */
const up = (kind: StoreKind) => kind === 'pglite' || (kind === 'postgres' ? pgUp : natsUp);
const KINDS: StoreKind[] = ['pglite', 'postgres', 'postgres+nats'];
const types = (evs: Envelope[], type: string) => evs.filter((e) => e.type === type).map((e) => (e.payload as { node: string }).node);

/** A model that fails the first `failures` calls made for node `node`, then behaves. */
function flaky(inner: LlmPort, node: string, failures: number): LlmPort {
  let failed = 0;
  return {
    provider: 'flaky',
    async complete(req, signal) {
      const first = req.messages.find((m) => m.role === 'user')?.content ?? '';
      if (first.startsWith(`Node: ${node} `) && failed < failures) {
        failed += 1;
        throw new Error(`provider overloaded (${failed})`);
      }
      return inner.complete(req, signal);
    },
  };
}

const testGraphs = [
  graph('join-after-branch')
    .node('a', { agent: 'supervisor' })
    .node('b', { agent: 'pipeline' })
    .node('c', { agent: 'pipeline' })
    .node('d', { agent: 'pipeline', instructions: 'Join what came before.' })
    .edge('a', 'b', () => false)
    .edge('a', 'c')
    .edge('b', 'd')
    .edge('c', 'd'),
  graph('flaky-retry').node('work', { agent: 'pipeline', retry: { attempts: 2, backoffMs: 5 } }),
  graph('flaky-no-retry').node('work', { agent: 'pipeline' }).node('after', { agent: 'pipeline' }).edge('work', 'after'),
  graph('slow-node').node('slow', { agent: 'pipeline', timeoutSec: 0.05 }),
] as GraphBuilder<unknown>[];

describe.each(KINDS)('end to end through the HTTP API on %s', (kind) => {
  let gw: TestGateway;
  let probe: ReturnType<typeof concurrencyProbe>;
  beforeAll(async () => {
    if (!up(kind)) return;
    // A model slow enough that the overlap checks test concurrency, not timing, on a loaded 2-core
    // machine (and over NATS, where each budget answer is a network hop).
    probe = concurrencyProbe(new OfflineLlm({ latencyMs: kind === 'postgres+nats' ? 150 : 80 }));
    gw = await testGateway(kind, { llm: probe, graphs: testGraphs });
  });
  afterAll(async () => gw?.close());
  const test = (name: string, fn: () => Promise<void>) => it(name, async (ctx) => (!up(kind) ? ctx.skip() : fn()));

  test('research-swarm with the product page input succeeds and its events show every node', async () => {
    const run = await gw.runToEnd({ graph: 'research-swarm', input: { topic: 'mediasoup vs LiveKit in 2026' } });
    expect(run.status).toBe('succeeded');
    const evs = await gw.events(run.id);
    expect(types(evs, 'node.start')).toEqual(['plan', 'search', 'analyse', 'summarise']);
    expect(types(evs, 'node.completed')).toEqual(['plan', 'search', 'analyse', 'summarise']);
    expect(evs.filter((e) => e.type === 'branch.completed')).toHaveLength(3);
    const search = evs.find((e) => e.type === 'tool.call')!.payload as { name: string; args: { query: string } };
    expect(search.name).toBe('web_search');
    expect(search.args.query).toContain('mediasoup vs LiveKit in 2026');
    // Data flows: the summary's prompt carries the run input and the analyses.
    const lastReq = evs.filter((e) => e.type === 'llm.request' && e.from === 'supervisor/summarise').at(-1)!.payload as {
      messages: Array<{ content: string }>;
    };
    expect(lastReq.messages[1]!.content).toContain('mediasoup vs LiveKit in 2026');
    expect(lastReq.messages[1]!.content).toContain('## analyse');
    expect(run.output).toHaveProperty('summarise.text');
    expect(run.usage).toMatchObject({ toolCalls: 1, perTool: { web_search: 1 } });
  });

  test('a swarm runs its branches concurrently', async () => {
    probe.maxInFlight = 0;
    const run = await gw.runToEnd({ graph: 'research-swarm', input: { topic: 'overlap' } });
    expect(run.status).toBe('succeeded');
    expect(probe.maxInFlight).toBeGreaterThanOrEqual(2);
    // And from the log: every branch made its first model call before any branch got its answer.
    const evs = await gw.events(run.id);
    const branchEv = (type: string) => evs.filter((e) => e.type === type && /^supervisor\/analyse\/branch-\d$/.test(type === 'llm.request' ? e.from : e.to));
    const firstAnswer = Math.min(...branchEv('llm.response').map((e) => e.seq));
    expect(branchEv('llm.request').filter((e) => e.seq < firstAnswer)).toHaveLength(3);
  });

  test('triage with intent refund takes the refund branch and skips escalate', async () => {
    const run = await gw.runToEnd({ graph: 'triage', input: { intent: 'refund' } });
    expect(run.status).toBe('succeeded');
    const evs = await gw.events(run.id);
    expect(types(evs, 'node.completed')).toEqual(['classify', 'refund']);
    expect(types(evs, 'node.skipped')).toEqual(['escalate']);
    const result = evs.find((e) => e.type === 'tool.result')!.payload as { name: string; ok: boolean; result: { offline: boolean; note: string } };
    expect(result).toMatchObject({ name: 'stripe_refund', ok: true, result: { offline: true } });
    expect(result.result.note).toMatch(/offline/);
    expect(run.nodes).toMatchObject({ escalate: { status: 'skipped' }, refund: { status: 'succeeded' } });
  });

  test('triage with another intent escalates and skips refund', async () => {
    const run = await gw.runToEnd({ graph: 'triage', input: { intent: 'question' } });
    expect(run.status).toBe('succeeded');
    const evs = await gw.events(run.id);
    expect(types(evs, 'node.completed')).toEqual(['classify', 'escalate']);
    expect(types(evs, 'node.skipped')).toEqual(['refund']);
    expect(evs.some((e) => e.type === 'tool.call')).toBe(false);
  });

  test('the draft-critique loop iterates until approved and then publishes', async () => {
    const run = await gw.runToEnd({ graph: 'draft-critique', input: { brief: 'why durable agents matter' } });
    expect(run.status).toBe('succeeded');
    const evs = await gw.events(run.id);
    expect(evs.filter((e) => e.type === 'loop.iterated').length).toBeGreaterThanOrEqual(1);
    expect(types(evs, 'node.completed').filter((n) => n === 'draft').length).toBeLessThanOrEqual(MAX_DRAFTS);
    expect(types(evs, 'node.completed').at(-1)).toBe('publish');
    expect((run.nodes as Record<string, { iteration: number }>).draft!.iteration).toBe(2);
  });

  test('a join after a conditional branch runs, with the branch not taken marked skipped', async () => {
    const run = await gw.runToEnd({ graph: 'join-after-branch', input: {} });
    expect(run.status).toBe('succeeded');
    const evs = await gw.events(run.id);
    expect(types(evs, 'node.skipped')).toEqual(['b']);
    expect(types(evs, 'node.completed')).toEqual(['a', 'c', 'd']);
    expect(Object.keys(run.output as object)).toEqual(['d']);
  });

  test('the event log is gapless per run, with unique ids, and pages with after/limit/next', async () => {
    const run = await gw.runToEnd({ graph: 'triage', input: { intent: 'refund' } });
    const all = await gw.events(run.id);
    expect(all.map((e) => e.seq)).toEqual(all.map((_, i) => i + 1));
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
    expect(all[0]!.type).toBe('run.started');
    expect(all.at(-1)!.type).toBe('run.finished');
    const p1 = (await gw.app.inject({ url: `/runs/${run.id}/events?limit=3` })).json();
    expect(p1.events.map((e: Envelope) => e.seq)).toEqual([1, 2, 3]);
    expect(p1.next).toBe(3);
    const p2 = (await gw.app.inject({ url: `/runs/${run.id}/events?after=${p1.next}&limit=1000` })).json();
    expect(p2.events[0].seq).toBe(4);
    expect(p2.next).toBeNull();
    // Causation links each message to the one that caused it.
    const start = all.find((e) => e.type === 'node.start')!;
    expect(all.find((e) => e.type === 'llm.request' && e.causationId === start.id)).toBeDefined();
  });

  test("lists a run's checkpoints, one per step with its node and size, and returns one with its state", async () => {
    const run = await gw.runToEnd({ graph: 'triage', input: { intent: 'refund' } });
    const list = (await gw.app.inject({ url: `/runs/${run.id}/checkpoints` })).json() as {
      checkpoints: Array<{ step: number; node: string | null; sizeBytes: number; seq: number }>;
    };
    // run.started, classify done (refund starts, escalate skipped), refund done (run finished)
    expect(list.checkpoints.map((c) => [c.step, c.node])).toEqual([
      [1, null],
      [2, 'classify'],
      [3, 'refund'],
    ]);
    expect(list.checkpoints.every((c) => c.sizeBytes > 100)).toBe(true);
    expect(list.checkpoints.at(-1)!.seq).toBe(run.lastSeq);
    const cp = (await gw.app.inject({ url: `/runs/${run.id}/checkpoints/2` })).json() as {
      state: { sched: { nodes: Record<string, { status: string }> }; live: Array<{ node: string }> };
    };
    expect(cp.state.sched.nodes).toMatchObject({ classify: { status: 'succeeded' }, refund: { status: 'running' }, escalate: { status: 'skipped' } });
    expect(cp.state.live.map((l) => l.node)).toEqual(['refund']);
    const missing = await gw.app.inject({ url: `/runs/${run.id}/checkpoints/99` });
    expect([missing.statusCode, missing.json().error.code]).toEqual([404, 'AO_CHECKPOINT_NOT_FOUND']);
    const unknown = await gw.app.inject({ url: `/runs/nope/checkpoints` });
    expect([unknown.statusCode, unknown.json().error.code]).toEqual([404, 'AO_RUN_NOT_FOUND']);
    const bad = await gw.app.inject({ url: `/runs/${run.id}/checkpoints/-1` });
    expect([bad.statusCode, bad.json().error.code]).toEqual([400, 'AO_VALIDATION']);
  });

  test('lists runs newest first, filtered by graph and status, with a cursor', async () => {
    const res = (await gw.app.inject({ url: '/runs?graph=triage&status=succeeded&limit=1' })).json();
    expect(res.runs).toHaveLength(1);
    expect(res.runs[0]).toMatchObject({ graph: 'triage', status: 'succeeded' });
    expect(res.next).toEqual(expect.any(String));
    const more = (await gw.app.inject({ url: `/runs?graph=triage&limit=100&cursor=${res.next}` })).json();
    expect(more.runs.length).toBeGreaterThanOrEqual(1);
    expect(more.runs.every((r: { id: string }) => r.id !== res.runs[0].id)).toBe(true);
  });

  test('GET /runs/:id/usage rolls the cost ledger up per node, actor and model, matching the run usage', async () => {
    const run = await gw.runToEnd({ graph: 'research-swarm', input: { topic: 'costs' } });
    const u = (await gw.app.inject({ url: `/runs/${run.id}/usage` })).json();
    const usage = run.usage as { totalTokens: number; toolCalls: number };
    expect(u.used.tokens).toBe(usage.totalTokens);
    expect(u.used.tools).toBe(usage.toolCalls);
    expect(u.used.perTool).toEqual({ web_search: 1 });
    expect(u.reserved).toEqual({ tokens: 0, tools: 0, usd: 0 });
    expect(Object.keys(u.byNode).sort()).toEqual(['analyse', 'plan', 'search', 'summarise']);
    expect(Object.keys(u.byActor)).toContain('supervisor/analyse/branch-2');
    expect(u.byModel['offline-1'].tokens).toBe(usage.totalTokens);
    expect(u.limits).toMatchObject({ tokens: 50000, perTool: { web_search: 20 } });
    const view = (await gw.app.inject({ url: `/runs/${run.id}` })).json();
    expect(view.budgetUsage).toMatchObject({ limits: { tokens: 50000 }, used: { tokens: usage.totalTokens } });
    const evs = await gw.events(run.id);
    // Every model and tool call was approved before it ran.
    for (const call of evs.filter((e) => e.type === 'llm.request' || e.type === 'tool.call')) {
      const key = (call.payload as { key: string }).key;
      const grant = evs.find((e) => e.type === 'budget.granted' && (e.payload as { key: string }).key === key);
      expect(grant && grant.seq < call.seq, key).toBe(true);
    }
  });

  test('GET /runs/:id shows status, input, output, usage and node states', async () => {
    const run = await gw.runToEnd({ graph: 'triage', input: { intent: 'refund' } });
    expect(run).toMatchObject({ graph: 'triage', input: { intent: 'refund' }, status: 'succeeded', error: null });
    expect((run.usage as { totalTokens: number }).totalTokens).toBeGreaterThan(0);
    expect(run.nodes).toMatchObject({ classify: { status: 'succeeded', iteration: 1, attempt: 1 } });
    expect(run.traceId).toMatch(/^[0-9a-f]{32}$/);
  });
});

describe.each(KINDS)('supervision on %s', (kind) => {
  const test = (name: string, fn: () => Promise<void>) => it(name, async (ctx) => (!up(kind) ? ctx.skip() : fn()));

  test('a failing node is retried with backoff and then succeeds', async () => {
    const gw = await testGateway(kind, { llm: flaky(new OfflineLlm(), 'work', 2), graphs: testGraphs });
    try {
      const run = await gw.runToEnd({ graph: 'flaky-retry' });
      expect(run.status).toBe('succeeded');
      const evs = await gw.events(run.id);
      expect(evs.filter((e) => e.type === 'node.retry_scheduled').map((e) => (e.payload as { delayMs: number }).delayMs)).toEqual([5, 10]);
      expect((run.nodes as Record<string, { attempt: number }>).work!.attempt).toBe(3);
    } finally {
      await gw.close();
    }
  });

  test('a node whose retries are spent fails the run with the cause, and nothing after it runs', async () => {
    const gw = await testGateway(kind, { llm: flaky(new OfflineLlm(), 'work', 99), graphs: testGraphs });
    try {
      const retried = await gw.runToEnd({ graph: 'flaky-retry' });
      expect(retried.status).toBe('failed');
      expect(retried.error).toMatchObject({ code: 'AO_NODE_FAILED', node: 'work', details: { attempts: 3, cause: { code: 'AO_LLM_FAILED' } } });
      const once = await gw.runToEnd({ graph: 'flaky-no-retry' });
      expect(once.status).toBe('failed');
      expect((once.nodes as Record<string, { status: string }>).after!.status).toBe('pending');
      expect(types(await gw.events(once.id), 'node.start')).toEqual(['work']);
    } finally {
      await gw.close();
    }
  });

  test('a node over its timeoutSec fails with AO_NODE_TIMEOUT', async () => {
    const gw = await testGateway(kind, { llm: new OfflineLlm({ latencyMs: 2000 }), graphs: testGraphs });
    try {
      const run = await gw.runToEnd({ graph: 'slow-node' });
      expect(run.status).toBe('failed');
      expect(run.error).toMatchObject({ code: 'AO_NODE_FAILED', details: { cause: { code: 'AO_NODE_TIMEOUT' } } });
    } finally {
      await gw.close();
    }
  });
});
