import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { defineTool, InProcessBus, OfflineLlm, openPgliteStore } from '@ao/runtime';
import type { CommitBatch, Envelope, LlmPort, Store } from '@ao/runtime';
import { Engine } from '../src/mod.js';
import { toolsWith, until } from './harness.js';

/**
 * Durability points, not envelope points: a step commits where the outside world is touched (an
 * effect's intent) and the messages between a run's own actors (node start and end, budget
 * decisions, results, the supervisor's checkpoint) ride in those commits.
 */
const STEPS = 5;

/** `STEPS` pipeline nodes in a row, each calling `noop` (through `args`), then the model once: the bench's W1. */
function pipeline(): GraphBuilder<unknown> {
  let g = graph('dp-pipeline');
  for (let i = 1; i <= STEPS; i++) g = g.node(`s${i}`, { agent: 'pipeline', tools: ['noop'], args: () => ({ noop: {} }), instructions: `Step ${i}.` });
  for (let i = 2; i <= STEPS; i++) g = g.edge(`s${i - 1}`, `s${i}`);
  return g as GraphBuilder<unknown>;
}

/** A tool that returns when the test lets it (no timer: a slow machine cannot make it pass or fail). */
let release: () => void = () => undefined;
const held = defineTool({
  name: 'held',
  description: 'Returns when the test releases it.',
  effect: 'pure',
  input: z.looseObject({}),
  handler: () => new Promise<{ ok: true }>((r) => (release = () => r({ ok: true }))),
});

/** `fast` and `slow` in parallel: fast ends while slow's tool is still held. */
const parallel = graph('dp-parallel')
  .node('begin', { agent: 'pipeline', instructions: 'Begin.' })
  .node('fast', { agent: 'pipeline', instructions: 'Be quick.' })
  .node('slow', { agent: 'pipeline', tools: ['held'], args: () => ({ held: {} }), instructions: 'Wait.' })
  .node('join', { agent: 'pipeline', instructions: 'Join.' })
  .edge('begin', 'fast')
  .edge('begin', 'slow')
  .edge('fast', 'join')
  .edge('slow', 'join') as GraphBuilder<unknown>;

describe('durability points', () => {
  let store: Store;
  let engine: Engine;
  /** The same, with staged envelopes that wait for a commit as long as it takes: counting commits cannot depend on the machine's speed. */
  let patient: Engine;
  const commits = new Map<string, CommitBatch[]>();

  beforeAll(async () => {
    const raw = await openPgliteStore();
    // Every commit the engine makes, by run.
    store = new Proxy(raw, {
      get(target, prop, receiver) {
        if (prop === 'commit') {
          return (b: CommitBatch) => {
            commits.set(b.runId, [...(commits.get(b.runId) ?? []), b]);
            return target.commit(b);
          };
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const llm = new OfflineLlm();
    engine = await Engine.create({ store, bus: new InProcessBus(), llm: () => llm, tools: toolsWith(held), graphs: [pipeline(), parallel] });
    patient = await Engine.create({
      store,
      bus: new InProcessBus(),
      llm: () => llm,
      tools: toolsWith(held),
      graphs: [pipeline()],
      nodeId: 'patient',
      stageFlushMs: 600_000,
    });
  });
  afterAll(async () => {
    await patient?.shutdown();
    await engine?.shutdown();
    await store?.close();
  });

  it('a step of one tool call and one model call commits twice (the ceiling is 3), and every envelope and checkpoint is still in the log', async () => {
    const run = await patient.startRun({ graph: 'dp-pipeline', input: { topic: 'commits' } });
    const done = await patient.waitForRun(run.id, 30_000);
    expect(done.status).toBe('succeeded');
    const batches = commits.get(run.id) ?? [];
    console.log(`[durability points] a ${STEPS}-step pipeline (a tool call and a model call a step) committed ${batches.length} times`);
    // Two a step (the tool's intent, the model's), besides the run's first (run.started) and last
    // (run.finished): the ceiling is 3 a step.
    expect(batches.length).toBeLessThanOrEqual(2 * STEPS + 2);
    const events = await store.listEvents(run.id, { limit: 10_000 });
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    // Each step's 12 envelopes (start, budget request and grant per call, the calls, results,
    // settlements, the node's end) are all in the log.
    for (const type of ['node.start', 'node.completed', 'tool.call', 'tool.result', 'llm.request', 'llm.response']) {
      expect(
        events.filter((e) => e.type === type),
        type,
      ).toHaveLength(STEPS);
    }
    expect(events.filter((e) => e.type === 'budget.granted')).toHaveLength(2 * STEPS);
    expect(events.filter((e) => e.type === 'budget.settle')).toHaveLength(2 * STEPS);
    // An effect's intent is committed with the budget's grant for it: the grant is never later than its call.
    const seqOf = (type: string, key: string) => events.find((e) => e.type === type && (e.payload as { key: string }).key === key)!.seq;
    for (const call of events.filter((e) => e.type === 'llm.request' || e.type === 'tool.call')) {
      const key = (call.payload as { key: string }).key;
      const commit = batches.find((b) => b.events.some((e) => e.id === call.id))!;
      expect(
        commit.events.some((e) => e.type === 'budget.granted' && (e.payload as { key: string }).key === key),
        `the grant of ${key} commits with its call`,
      ).toBe(true);
      expect(seqOf('budget.granted', key)).toBeLessThan(call.seq);
    }
    // One checkpoint per supervisor step, each at the seq of its own step's last envelope (a
    // commit may carry more after it), so a restore from it re-derives what came later.
    const cps = await store.listCheckpoints(run.id);
    expect(cps.map((c) => c.step)).toEqual(cps.map((_, i) => i + 1));
    for (const cp of cps) {
      const last = events.find((e) => e.seq === cp.seq)!;
      expect(last.from, `checkpoint ${cp.step} ends at a supervisor envelope`).toBe('supervisor');
    }
  });

  it('what is staged reaches the log by itself while another branch of the run is still busy', async () => {
    const run = await engine.startRun({ graph: 'dp-parallel', input: { topic: 'flush' } });
    let seen: Envelope[] = [];
    const end = Date.now() + 30_000;
    // `fast` ends while `slow` is held: its end must be committed without waiting for slow.
    while (!seen.some((e) => e.type === 'node.completed' && (e.payload as { node: string }).node === 'fast')) {
      if (Date.now() > end) throw new Error(`fast's end never reached the log: ${seen.map((e) => e.type).join(', ')}`);
      await new Promise((r) => setTimeout(r, 20));
      seen = await store.listEvents(run.id, { limit: 10_000 });
    }
    expect(seen.some((e) => e.type === 'tool.result')).toBe(false);
    release();
    const done = await engine.waitForRun(run.id, 30_000);
    expect(done.status).toBe('succeeded');
  });

  it('an answer the store cannot hold (a NUL character) fails its own append, as its commit used to: the run ends, and a run beside it is untouched', async () => {
    const offline = new OfflineLlm();
    // A model whose answers for one topic hold a NUL character (Postgres jsonb refuses it).
    const nul: LlmPort = {
      provider: offline.provider,
      complete: async (req, signal) => {
        const res = await offline.complete(req, signal);
        return JSON.stringify(req.messages).includes('poison') ? { ...res, message: { ...res.message, content: `bad\u0000answer` } } : res;
      },
    };
    const e = await Engine.create({ store, bus: new InProcessBus(), llm: () => nul, tools: toolsWith(), graphs: [pipeline()], nodeId: 'nul' });
    try {
      const [bad, good] = await Promise.all([
        e.startRun({ graph: 'dp-pipeline', input: { topic: 'poison' } }),
        e.startRun({ graph: 'dp-pipeline', input: { topic: 'clean' } }),
      ]);
      const [b, g] = await Promise.all([e.waitForRun(bad.id, 30_000), e.waitForRun(good.id, 30_000)]);
      expect(b.status).toBe('failed');
      expect(JSON.stringify(b.error)).toContain('AO_ENVELOPE_INVALID');
      expect(g.status).toBe('succeeded');
      const events = await store.listEvents(bad.id, { limit: 10_000 });
      expect(events.map((x) => x.seq)).toEqual(events.map((_, i) => i + 1));
    } finally {
      await e.shutdown();
    }
  });

  it('an answer past the payload cap fails its own append with AO_PAYLOAD_TOO_LARGE: the run ends, a run beside it is untouched, the log stays gapless', async () => {
    const offline = new OfflineLlm();
    const big: LlmPort = {
      provider: offline.provider,
      complete: async (req, signal) => {
        const res = await offline.complete(req, signal);
        return JSON.stringify(req.messages).includes('huge') ? { ...res, message: { ...res.message, content: 'x'.repeat(20_000) } } : res;
      },
    };
    const e = await Engine.create({
      store,
      bus: new InProcessBus(),
      llm: () => big,
      tools: toolsWith(),
      graphs: [pipeline()],
      nodeId: 'cap',
      maxPayloadBytes: 16_384,
    });
    try {
      const [bad, good] = await Promise.all([
        e.startRun({ graph: 'dp-pipeline', input: { topic: 'huge' } }),
        e.startRun({ graph: 'dp-pipeline', input: { topic: 'small' } }),
      ]);
      const [b, g] = await Promise.all([e.waitForRun(bad.id, 30_000), e.waitForRun(good.id, 30_000)]);
      expect(b.status).toBe('failed');
      expect(JSON.stringify(b.error)).toContain('AO_PAYLOAD_TOO_LARGE');
      expect(g.status).toBe('succeeded');
      const events = await store.listEvents(bad.id, { limit: 10_000 });
      expect(events.map((x) => x.seq)).toEqual(events.map((_, i) => i + 1));
      expect(events.every((x) => JSON.stringify(x.payload).length < 16_384)).toBe(true);
    } finally {
      await e.shutdown();
    }
  });

  it('a commit whose outcome is unknown ends the hosting: the run is resumed from the log and ends as if nothing happened', async () => {
    let failed = 0;
    // The third commit of the run fails as a lost connection would (it may or may not have landed).
    const flaky = new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'commit') {
          return async (b: CommitBatch) => {
            if (b.events.some((x) => x.type === 'tool.call' && (x.payload as { key: string }).key.startsWith('supervisor/s2/')) && failed === 0) {
              failed += 1;
              await target.commit(b); // it landed, but the answer was lost
              throw new Error('Connection terminated unexpectedly');
            }
            return target.commit(b);
          };
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const llm = new OfflineLlm();
    const e = await Engine.create({
      store: flaky,
      bus: new InProcessBus(),
      llm: () => llm,
      tools: toolsWith(),
      graphs: [pipeline()],
      nodeId: 'flaky',
      claimIntervalMs: 100,
    });
    try {
      const run = await e.startRun({ graph: 'dp-pipeline', input: { topic: 'lost answer' } });
      const done = await until(
        async () => {
          const r = await store.getRun(run.id);
          return r && r.status !== 'running' && r.status !== 'pending' ? r : undefined;
        },
        'the run to be resumed and end',
        30_000,
      );
      expect(failed).toBe(1);
      expect(done.status).toBe('succeeded');
      const events = await store.listEvents(run.id, { limit: 10_000 });
      expect(events.map((x) => x.seq)).toEqual(events.map((_, i) => i + 1));
      expect(new Set(events.map((x) => x.id)).size).toBe(events.length);
      for (const type of ['tool.call', 'llm.response', 'node.completed'])
        expect(
          events.filter((x) => x.type === type),
          type,
        ).toHaveLength(STEPS);
    } finally {
      await e.shutdown();
    }
  });
});
