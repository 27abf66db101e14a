import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { spanContextOf } from '@ao/runtime';
import type { Store } from '@ao/runtime';
import { inMemoryTelemetry } from '@ao/runtime/testing';
import { allEvents, countingLlm, makeEngine, startNode, until } from './harness.js';

type Spans = ReturnType<ReturnType<typeof inMemoryTelemetry>['spans']['getFinishedSpans']>;
type ReadSpan = Spans[number];

const idOf = (s: ReadSpan) => s.spanContext().spanId;
const parentOf = (s: ReadSpan) => s.parentSpanContext?.spanId;

describe('OpenTelemetry: the span tree of a run', () => {
  let tel: ReturnType<typeof inMemoryTelemetry>;
  let h: Awaited<ReturnType<typeof makeEngine>>;
  beforeAll(async () => {
    tel = inMemoryTelemetry();
    h = await makeEngine('pglite');
  });
  afterAll(async () => {
    await h.close();
    tel.reset();
  });

  const spansOf = async (store: Store, runId: string) => {
    const root = spanContextOf((await allEvents(store, runId))[0]!.trace)!;
    return { root, spans: tel.spans.getFinishedSpans().filter((s) => s.spanContext().traceId === root.traceId) };
  };

  it('research-swarm is one trace: run at the root, a span per node and branch, chat and execute_tool spans with GenAI attributes', async () => {
    const run = await h.engine.waitForRun((await h.engine.startRun({ graph: 'research-swarm', input: { topic: 'tracing' } })).id);
    expect(run.status).toBe('succeeded');
    const { root, spans } = await spansOf(h.store, run.id);
    expect(run.traceId).toBe(root.traceId);

    const runSpans = spans.filter((s) => s.name === 'run');
    expect(runSpans).toHaveLength(1);
    const runSpan = runSpans[0]!;
    expect(idOf(runSpan)).toBe(root.spanId);
    expect(runSpan.parentSpanContext).toBeUndefined();
    expect(runSpan.attributes).toMatchObject({
      'ao.run.id': run.id,
      'ao.graph': 'research-swarm',
      'ao.graph.version': run.graphVersion,
      'ao.run.status': 'succeeded',
    });

    const nodes = spans.filter((s) => s.name === 'node');
    expect(nodes.map((s) => s.attributes['ao.node']).sort()).toEqual(['analyse', 'plan', 'search', 'summarise']);
    for (const n of nodes) {
      expect(parentOf(n)).toBe(root.spanId);
      expect(n.attributes).toMatchObject({ 'ao.attempt': 1, 'ao.iteration': 1, 'ao.run.id': run.id, 'ao.graph.version': run.graphVersion });
    }
    const byNode = new Map(nodes.map((n) => [n.attributes['ao.node'], n]));
    expect(byNode.get('plan')!.attributes['ao.agent.kind']).toBe('supervisor');
    expect(byNode.get('analyse')!.attributes['ao.agent.kind']).toBe('swarm');

    const branches = spans.filter((s) => s.name === 'node.branch');
    expect(branches.map((b) => b.attributes['ao.branch']).sort()).toEqual([1, 2, 3]);
    for (const b of branches) expect(parentOf(b)).toBe(idOf(byNode.get('analyse')!));
    // Fan-in: the swarm's span links to each branch whose result it joined.
    const analyseLinks = byNode.get('analyse')!.links.map((l) => l.context.spanId);
    for (const b of branches) expect(analyseLinks).toContain(idOf(b));

    const chats = spans.filter((s) => s.name.startsWith('chat '));
    expect(chats.length).toBeGreaterThanOrEqual(6);
    const callers = new Set([...nodes, ...branches].map(idOf));
    for (const c of chats) {
      expect(callers.has(parentOf(c)!)).toBe(true);
      expect(c.attributes).toMatchObject({
        'gen_ai.operation.name': 'chat',
        'gen_ai.system': 'offline',
        'gen_ai.request.model': 'default',
        'gen_ai.request.max_tokens': 1024,
      });
      expect(c.attributes['gen_ai.usage.input_tokens']).toBeGreaterThan(0);
      expect(c.attributes['gen_ai.usage.output_tokens']).toBeGreaterThan(0);
      expect(c.attributes['gen_ai.response.finish_reasons']).toHaveLength(1);
      // Prompt contents are not recorded unless the user opts in.
      expect(c.attributes['gen_ai.input.messages']).toBeUndefined();
    }
    const tools = spans.filter((s) => s.name === 'execute_tool web_search');
    expect(tools.length).toBeGreaterThan(0);
    for (const t of tools) {
      expect(parentOf(t)).toBe(idOf(byNode.get('search')!));
      expect(t.attributes).toMatchObject({ 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'web_search', 'ao.tool.outcome': 'ok' });
      expect(String(t.attributes['ao.idempotency_key'])).toMatch(new RegExp(`^${run.id}/supervisor/search/\\d+$`));
      expect(t.attributes['gen_ai.tool.call.arguments']).toBeUndefined();
    }

    // Messages: search's span links to the supervisor step that started it, which links to plan's span (whose completion it handled).
    const steps = new Map(spans.filter((s) => s.name === 'supervisor.step').map((s) => [idOf(s), s]));
    const starter = steps.get(byNode.get('search')!.links[0]!.context.spanId)!;
    expect(starter).toBeDefined();
    expect(starter.links.map((l) => l.context.spanId)).toContain(idOf(byNode.get('plan')!));
    // Every envelope a node sent carries that node's span.
    const events = await allEvents(h.store, run.id);
    const completed = events.find((e) => e.type === 'node.completed' && (e.payload as { node: string }).node === 'plan')!;
    expect(spanContextOf(completed.trace)!.spanId).toBe(idOf(byNode.get('plan')!));
  });

  it('a budget refusal is an event on the call span, and the stop an event on the run span, which carries the error status', async () => {
    const tight = graph('tight').node('only', { agent: 'pipeline', instructions: 'Say a lot.' }).budget({ tokens: 30 });
    h.engine.register(tight as GraphBuilder<unknown>);
    const run = await h.engine.waitForRun((await h.engine.startRun({ graph: 'tight' })).id);
    expect(run.status).toBe('budget_exceeded');
    const { spans } = await spansOf(h.store, run.id);
    const chat = spans.find((s) => s.name.startsWith('chat '))!;
    expect(chat.events.map((e) => e.name)).toContain('budget.refused');
    expect(chat.status.code).toBe(2); // ERROR
    const runSpan = spans.find((s) => s.name === 'run')!;
    expect(runSpan.status.code).toBe(2);
    expect(runSpan.attributes['ao.run.status']).toBe('budget_exceeded');
    expect(runSpan.events.find((e) => e.name === 'budget.exceeded')?.attributes).toMatchObject({ 'ao.budget.limit': 'tokens', 'ao.budget.value': '30' });
    expect(runSpan.events.some((e) => e.name === 'exception')).toBe(true);
  });

  it('spans of a replay carry replay=true and their own trace', async () => {
    const original = await h.engine.waitForRun((await h.engine.startRun({ graph: 'triage', input: { intent: 'question' } })).id);
    const replay = await h.engine.waitForRun((await h.engine.replay(original.id, { fromStep: 1, mode: 'recorded' })).id);
    expect(replay.traceId).not.toBe(original.traceId);
    const { spans } = await spansOf(h.store, replay.id);
    expect(spans.length).toBeGreaterThan(2);
    for (const s of spans) expect(s.attributes).toMatchObject({ replay: true, 'ao.replay.of': original.id });
  });

  it('counts runs, tokens and tool calls as metrics', async () => {
    const exporter = await tel.metrics();
    const names = exporter.getMetrics().flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics.map((m) => m.descriptor.name)));
    for (const n of ['ao.runs.started', 'ao.runs.finished', 'ao.node.duration', 'ao.tokens', 'ao.tool.calls', 'ao.budget.refusals']) expect(names).toContain(n);
  });
});

describe('OpenTelemetry: a run that changes hands stays one trace', () => {
  let tel: ReturnType<typeof inMemoryTelemetry>;
  beforeAll(() => {
    tel = inMemoryTelemetry();
  });
  afterAll(() => tel.reset());

  it('spans from the engine that stopped and the one that resumed share the run trace and its single root', async () => {
    const h = await makeEngine('pglite');
    const slow = graph('slow-chain')
      .node('a', { agent: 'pipeline', instructions: 'First.' })
      .node('b', { agent: 'pipeline', instructions: 'Second.' })
      .node('c', { agent: 'pipeline', instructions: 'Third.' })
      .edge('a', 'b')
      .edge('b', 'c') as GraphBuilder<unknown>;
    try {
      const first = await startNode({ store: h.store, nodeId: 'first', graphs: [slow], llm: countingLlm(150) });
      const run = await first.startRun({ graph: 'slow-chain' });
      // b is in its model call (its span is open) when the first engine stops.
      await until(async () => (await allEvents(h.store, run.id)).some((e) => e.type === 'llm.request' && e.from === 'supervisor/b'), 'b to call its model');
      await first.shutdown();
      const second = await startNode({ store: h.store, nodeId: 'second', graphs: [slow] });
      try {
        const done = await until(async () => {
          const r = await h.store.getRun(run.id);
          return r?.status === 'succeeded' ? r : undefined;
        }, 'the run to finish on the second engine');
        const root = spanContextOf((await allEvents(h.store, run.id))[0]!.trace)!;
        expect(done.traceId).toBe(root.traceId);
        const spans = tel.spans.getFinishedSpans().filter((s) => s.spanContext().traceId === root.traceId);
        const runSpans = spans.filter((s) => s.name === 'run');
        expect(runSpans).toHaveLength(1);
        expect(idOf(runSpans[0]!)).toBe(root.spanId);
        const nodes = spans.filter((s) => s.name === 'node');
        // a on the first engine; b twice (cut short on the first, again on the second); c on the second.
        expect(nodes.map((n) => n.attributes['ao.node']).sort()).toEqual(['a', 'b', 'b', 'c']);
        for (const n of nodes) expect(parentOf(n)).toBe(root.spanId);
      } finally {
        await second.shutdown();
      }
    } finally {
      await h.close();
    }
  });
});
