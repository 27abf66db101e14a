import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { defineTool, OfflineLlm, openPgliteStore } from '@ao/runtime';
import type { Envelope, LlmPort, LlmRequest, LlmResponse, Store } from '@ao/runtime';
import { diffRuns } from '../src/replay.js';
import { allEvents, sleep, startNode, toolsWith } from './harness.js';
import type { Engine } from '../src/mod.js';

/**
 * What retention does to what is stored once (issue 22): a checkpoint holds a node's output as a
 * reference to its `node.completed`, and an agent's output lists its tool calls by reference to
 * its turn records. Both are in the run's own journal, which retention never cuts: it deletes
 * checkpoints (a kept one still reads whole, and a replay or fork from it works) or whole runs
 * (their journal rows, turn records, contents and checkpoints go together, by the foreign keys).
 * Between runs, a replay refers to its original, which retention keeps while a replay of it is
 * stored (replay-shares.test.ts).
 */
const PAGES = 12;
const page = (i: number) => ({ page: i, text: `page ${i}: ${'lorem ipsum '.repeat(30)}` });

/** A model that reads PAGES pages with the tool when offered it (the agent offers it for PAGES turns), and otherwise answers as the offline model does. */
function reader(): LlmPort {
  const offline = new OfflineLlm();
  return {
    provider: 'reader',
    async complete(req: LlmRequest, signal?: AbortSignal): Promise<LlmResponse> {
      if (!req.tools?.some((t) => t.name === 'read_page')) return offline.complete(req, signal);
      const read = req.messages.filter((m) => m.role === 'tool').length;
      return {
        model: 'reader',
        message: { content: '', toolCalls: [{ id: `c${read + 1}`, name: 'read_page', arguments: { page: read + 1 } }] },
        usage: { inputTokens: 10, outputTokens: 5 },
        finishReason: 'tool_calls',
      };
    },
  };
}

const readPage = defineTool({
  name: 'read_page',
  description: 'Read a page.',
  effect: 'read',
  input: z.object({ page: z.number().int() }),
  handler: async ({ page: n }) => page(n),
});

const twoNodes = (name: string) =>
  graph(name)
    .node('reader', { agent: 'pipeline', tools: ['read_page'], maxTurns: PAGES + 1, instructions: 'Read the pages.' })
    .node('summary', { agent: 'pipeline', instructions: 'Summarise what was read.' })
    .edge('reader', 'summary');

const kept = twoNodes('refs-keep').retention({ keepCheckpoints: 2 }) as GraphBuilder<unknown>;
const gone = twoNodes('refs-gone').retention({ ttlSec: 0.001 }) as GraphBuilder<unknown>;

const readerOutput = (evs: Envelope[]) =>
  (evs.find((e) => e.type === 'node.completed' && (e.payload as { node: string }).node === 'reader')!.payload as { output: unknown }).output;

describe('retention of what is stored by reference', () => {
  let store: Store;
  let engine: Engine;
  beforeAll(async () => {
    store = await openPgliteStore();
    engine = await startNode({ store, nodeId: 'refs', graphs: [kept, gone], tools: toolsWith(readPage), llm: reader() });
  });
  afterAll(async () => {
    await engine?.shutdown();
    await store?.close();
  });

  it('keeps a checkpoint whole after the ones before it are deleted: it reads back its node output, and a recorded replay and a fork from it work', async () => {
    const run = await engine.waitForRun((await engine.startRun({ graph: 'refs-keep', input: {} })).id);
    expect(run.status).toBe('succeeded');
    const evs = await allEvents(store, run.id);
    const output = readerOutput(evs) as { text: string; tools: unknown[] };
    expect(output.tools).toHaveLength(PAGES);
    // The agent's requests had turn records; its output listed its tool calls by reference to them.
    expect((await store.turnsSince!([{ runId: run.id, from: 0 }])).get(run.id)!.filter((t) => t.a === 'supervisor/reader')).toHaveLength(PAGES + 1);

    const before = await store.listCheckpoints(run.id);
    // The checkpoint of the step that finished `reader` (and started `summary`) holds its output by reference.
    const step = before.find((c) => c.node === 'reader')!.step;
    const cp = (await store.getCheckpoint(run.id, step))!;
    expect((cp.state as { $refs?: unknown[] }).$refs).toEqual([
      { path: ['sched', 'outputs', 'reader'], id: evs.find((e) => e.type === 'node.completed')!.id, field: ['output'] },
    ]);
    expect((cp.state as { sched: { outputs: Record<string, unknown> } }).sched.outputs.reader).toEqual(output);

    const swept = await engine.sweep();
    expect(swept.checkpoints).toBe(before.length - 2);
    expect((await store.listCheckpoints(run.id)).map((c) => c.step)).toEqual(before.slice(-2).map((c) => c.step));
    const still = (await store.getCheckpoint(run.id, step))!;
    expect((still.state as { sched: { outputs: Record<string, unknown> } }).sched.outputs.reader).toEqual(output);

    // A recorded replay from the kept step reproduces the run.
    const replay = await engine.waitForRun((await engine.replay(run.id, { fromStep: step, mode: 'recorded' })).id);
    expect(replay.replay?.divergence ?? null).toBeNull();
    expect((await diffRuns(store, run, replay)).first).toBeNull();
    // A fork from it runs `summary` again with new instructions, on the reader's output as it was.
    const fork = await engine.waitForRun(
      (await engine.replay(run.id, { fromStep: step, mode: 'live', overrides: { nodes: { summary: { instructions: 'Summarise it in one line.' } } } })).id,
    );
    expect(fork.status).toBe('succeeded');
    // (`summary` was live at that step: it runs again from its start message, which the fork inherits.)
    const prompt = (await allEvents(store, fork.id)).find((e) => e.type === 'llm.request' && e.from.startsWith('supervisor/summary'))!;
    expect((prompt.payload as { messages: Array<{ content: string }> }).messages[1]!.content).toContain(output.text.split('\n')[0]);
    // The fork's own checkpoints hold outputs by value where they came from its original's log.
    const forkCps = await store.listCheckpoints(fork.id);
    const first = (await store.getCheckpoint(fork.id, forkCps[0]!.step))!;
    expect((first.state as { $refs?: unknown }).$refs).toBeUndefined();
    expect((first.state as { sched: { outputs: Record<string, unknown> } }).sched.outputs.reader).toEqual(output);
  });

  it('deletes a run whole: its journal rows with their turn records, its contents and its checkpoints', async () => {
    const run = await engine.waitForRun((await engine.startRun({ graph: 'refs-gone', input: {} })).id);
    expect(run.status).toBe('succeeded');
    const ids = (await allEvents(store, run.id)).map((e) => ({ runId: run.id, id: e.id }));
    expect((await store.turnsSince!([{ runId: run.id, from: 0 }])).get(run.id)!.length).toBeGreaterThan(0);
    await sleep(20);
    expect((await engine.sweep()).runs).toBe(1);
    expect(await store.getRun(run.id)).toBeUndefined();
    expect(await allEvents(store, run.id)).toEqual([]);
    expect(await store.eventsById(ids)).toEqual([]);
    expect((await store.turnsSince!([{ runId: run.id, from: 0 }])).get(run.id)).toEqual([]);
    expect(await store.listCheckpoints(run.id)).toEqual([]);
  });
});
