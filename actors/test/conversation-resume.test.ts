import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { defineTool, openPgliteStore } from '@ao/runtime';
import type { Envelope, LlmPort, LlmRequest, LlmResponse, Store } from '@ao/runtime';
import { diffRuns } from '../src/replay.js';
import { RESUME_EVERY } from '../src/agent-loop/agent-loop.js';
import { allEvents, gate, startNode, toolsWith, until } from './harness.js';
import type { Engine } from '../src/mod.js';

/**
 * An agent loop that checkpoints its conversation (issue 22): a long conversation stopped
 * mid-node goes on, in the next engine, from its last resume point (not from its start), and ends
 * exactly as an uninterrupted one: the same output and usage, a gapless log without duplicates,
 * each tool call made again only when it was in flight, and a recorded replay that reproduces it.
 */

const TURNS = 20;

/** Page i: a few hundred characters of seeded text. */
const page = (i: number) => ({ page: i, text: Array.from({ length: 60 }, (_, k) => `w${(i * 7919 + k * 104_729) % 99_991}`).join(' ') });

/** The model: asks for the next page while pages are left and tools are offered, then answers. */
function reader(): LlmPort & { calls: number } {
  const llm = {
    provider: 'reader',
    calls: 0,
    async complete(req: LlmRequest): Promise<LlmResponse> {
      llm.calls += 1;
      const read = req.messages.filter((m) => m.role === 'tool').length;
      if (!req.tools?.length || read >= TURNS)
        return {
          model: 'reader',
          message: { content: `I read ${read} pages.`, toolCalls: [] },
          usage: { inputTokens: 10 + read, outputTokens: 5 },
          finishReason: 'stop',
        };
      const n = read + 1;
      return {
        model: 'reader',
        message: { content: `Reading page ${n}.`, toolCalls: [{ id: `call_${n}`, name: 'read_page', arguments: { page: n } }] },
        usage: { inputTokens: 10 + read, outputTokens: 5 },
        finishReason: 'tool_calls',
      };
    },
  };
  return llm;
}

/** `read_page`; the call for page `hangAt` never returns (the engine is stopped while it is in flight). */
function pages(hangAt: number, calls: string[]) {
  const never = gate();
  return defineTool({
    name: 'read_page',
    description: 'Read one page.',
    effect: 'read',
    input: z.object({ page: z.number().int() }),
    async handler({ page: n }, ctx) {
      calls.push(`${ctx.idempotencyKey}:${n}`);
      if (n === hangAt) await never.promise;
      return page(n);
    },
  });
}

const conversation = graph('long-read').node('reader', {
  agent: 'pipeline',
  tools: ['read_page'],
  maxTurns: TURNS + 1,
  instructions: 'Read every page.',
}) as GraphBuilder<unknown>;

/** The store, with what each resume read: the seq its events were read after. */
function watched(store: Store): { store: Store; reads: number[] } {
  const reads: number[] = [];
  return {
    reads,
    store: new Proxy(store, {
      get(target, key) {
        if (key === 'eventsAfter')
          return (ranges: Array<{ runId: string; after: number }>, o?: unknown) => (
            reads.push(...ranges.map((r) => r.after)),
            target.eventsAfter(ranges, o as never)
          );
        const v: unknown = Reflect.get(target, key, target);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }),
  };
}

function expectWholeLog(evs: Envelope[]): void {
  expect(evs.map((e) => e.seq)).toEqual(evs.map((_, i) => i + 1));
  expect(new Set(evs.map((e) => e.id)).size).toBe(evs.length);
  expect(evs.filter((e) => e.type === 'run.finished')).toHaveLength(1);
}

describe('a long agent conversation goes on from its last resume point', () => {
  let store: Store;
  const engines: Engine[] = [];
  const node = async (s: Store, nodeId: string, hangAt: number, calls: string[], llm = reader()) => {
    const e = await startNode({ store: s, nodeId, graphs: [conversation], tools: toolsWith(pages(hangAt, calls)), llm });
    engines.push(e);
    return { e, llm };
  };
  beforeAll(async () => {
    store = await openPgliteStore();
  });
  afterAll(async () => {
    for (const e of engines) await e.shutdown();
    await store?.close();
  });

  it('stopped at turn 13 and again at 18, each next engine restores the conversation at its last resume point, runs only the turns after it again from the log, and ends as an uninterrupted run', async () => {
    const calls: string[] = [];
    const { e: clean } = await node(store, 'conv-clean', 0, calls);
    const reference = await clean.waitForRun((await clean.startRun({ graph: 'long-read', input: {} })).id, 30_000);
    expect(reference.status).toBe('succeeded');
    expect(JSON.stringify(reference.output)).toContain(`I read ${TURNS} pages.`);
    await clean.shutdown();

    // Stopped while the tool call of turn 13 is in flight.
    const { e: a } = await node(store, 'conv-a', 13, calls);
    const run = await a.startRun({ graph: 'long-read', input: {} });
    await until(() => calls.some((c) => c.startsWith(run.id) && c.endsWith(':13')), 'the call for page 13');
    await a.shutdown();

    // The next engine goes on from the resume point of turn 9 (1, 9, 17, ...: every RESUME_EVERY turns).
    expect(RESUME_EVERY).toBe(8);
    const w = watched(store);
    const { e: b, llm: llmB } = await node(w.store, 'conv-b', 18, calls);
    await until(() => calls.some((c) => c.startsWith(run.id) && c.endsWith(':18')), 'the call for page 18');
    const evsB = await allEvents(store, run.id);
    const point9 = evsB.find((e) => e.type === 'llm.request' && (e.payload as { key: string }).key === 'supervisor/reader/17')!;
    // Its events were read from just before turn 9's request, not from the node's start.
    expect(Math.min(...w.reads)).toBeGreaterThan(point9.seq - 8);
    expect(Math.min(...w.reads)).toBeLessThan(point9.seq);
    // Turns 9-13 were answered from the log; 14-18 by the model.
    expect(llmB.calls).toBe(5);
    await b.shutdown();

    // Stopped again at turn 18: the third engine goes on from turn 17's point, which the second wrote.
    const w2 = watched(store);
    const { e: c, llm: llmC } = await node(w2.store, 'conv-c', 0, calls);
    const done = await c.waitForRun(run.id, 30_000);
    expect(done.status).toBe('succeeded');
    expect(done.output).toEqual(reference.output);
    expect(done.usage).toEqual(reference.usage);
    expect(llmC.calls).toBe(TURNS + 1 - 18);
    const evs = await allEvents(store, run.id);
    const point17 = evs.find((e) => e.type === 'llm.request' && (e.payload as { key: string }).key === 'supervisor/reader/33')!;
    expect(Math.min(...w2.reads)).toBeGreaterThan(point17.seq - 8);

    expectWholeLog(evs);
    // Each page read once, but the two in flight at a stop (read again with the same key).
    const mine = calls.filter((k) => k.startsWith(`${run.id}/`));
    expect(mine.map((k) => Number(k.split(':')[1]))).toEqual([
      ...Array.from({ length: 13 }, (_, i) => i + 1),
      ...Array.from({ length: 6 }, (_, i) => i + 13),
      ...Array.from({ length: 3 }, (_, i) => i + 18),
    ]);
    expect(new Set(mine).size).toBe(TURNS);
    // Every request reads back whole and as the uninterrupted run's did.
    const requests = (id: string, all: Envelope[]) =>
      all.filter((e) => e.type === 'llm.request').map((e) => (e.payload as { messages: unknown[]; hash: string }).hash);
    expect(requests(run.id, evs)).toEqual(requests(reference.id, await allEvents(store, reference.id)));
    const last = evs.filter((e) => e.type === 'llm.request').at(-1)!.payload as { messages: Array<{ role: string }> };
    expect(last.messages).toHaveLength(2 + 2 * TURNS);

    // A recorded replay of the resumed run from its start reproduces its log.
    const replay = await c.waitForRun((await c.replay(run.id, { fromStep: 0, mode: 'recorded' })).id, 30_000);
    expect(replay.replay?.divergence ?? null).toBeNull();
    expect(replay.status).toBe('succeeded');
    const d = await diffRuns(store, done, replay);
    expect(d.first).toBeNull();
    expect(d.nodes).toEqual([]);
  });
});
