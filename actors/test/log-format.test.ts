import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleGraphs } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { InProcessBus, OfflineLlm, openPgliteStore } from '@ao/runtime';
import type { CheckpointRecord, Envelope, RunRecord, Store } from '@ao/runtime';
import { writeFormat1Store } from '@ao/runtime/testing';
import { Engine } from '../src/mod.js';
import { diffRuns } from '../src/replay.js';
import { allEvents, toolsWith, until } from './harness.js';

/**
 * The log format across versions: runs journaled by the code before durability points (every
 * envelope its own commit, a checkpoint at its commit's last seq, node executions as node tasks)
 * still resume and still replay. `fixtures/log-format-v0.json` holds two research-swarm runs
 * written by that code (commit 46df0c3): one finished, one stopped mid-swarm (branch 2's model
 * call in flight, its node shut down), as their rows: run, events, checkpoints.
 */
interface Dumped {
  run: RunRecord;
  events: Envelope[];
  checkpoints: CheckpointRecord[];
}
const fixture = JSON.parse(readFileSync(new URL('./fixtures/log-format-v0.json', import.meta.url), 'utf8')) as { finished: Dumped; interrupted: Dumped };

/**
 * The runs as if they had been written a moment ago: every time moved by the same amount (event
 * times, the run's times, the wall-clock deadline kept in checkpoints), so their 300 s wall-clock
 * budget is not spent by the fixture's age.
 */
function recent(d: Dumped, now: number): Dumped {
  const offset = now - Date.parse(d.events[0]!.time);
  const move = (t: string) => new Date(Date.parse(t) + offset).toISOString();
  return {
    run: {
      ...d.run,
      createdAt: move(d.run.createdAt),
      ...(d.run.startedAt ? { startedAt: move(d.run.startedAt) } : {}),
      ...(d.run.finishedAt ? { finishedAt: move(d.run.finishedAt) } : {}),
    },
    events: d.events.map((e) => ({ ...e, time: move(e.time) })),
    checkpoints: d.checkpoints.map((c) => {
      const state = c.state as { deadline?: number };
      return { ...c, state: typeof state.deadline === 'number' ? { ...state, deadline: state.deadline + offset } : state };
    }),
  };
}

/** Write a dumped run's rows into a store as they were, held by a node that is gone (its lease lapsed). */
async function load(store: Store, dumped: Dumped): Promise<void> {
  const d = recent(dumped, Date.now());
  const r = d.run;
  await store.createRun({
    id: r.id,
    graph: r.graph,
    graphVersion: r.graphVersion,
    input: r.input,
    budget: r.budget,
    nodes: {},
    traceId: r.traceId,
    owner: 'old',
    leaseMs: 1,
  });
  await store.commit({
    runId: r.id,
    events: d.events,
    patch: {
      status: r.status,
      nodes: r.nodes,
      usage: r.usage,
      ...(r.startedAt ? { startedAt: r.startedAt } : {}),
      ...(r.finishedAt ? { finishedAt: r.finishedAt, output: r.output } : {}),
    },
    checkpoints: d.checkpoints.map((c) => ({ step: c.step, seq: c.seq, node: c.node, graphVersion: c.graphVersion, state: c.state })),
  });
}

/**
 * The same rows as the code of log format 1 stored them (one `events` row per envelope, the
 * migrations up to 0006), then opened by today's code: migration 0007 rewrites them as format 2.
 */
async function openFormat1(): Promise<{ store: Store; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'ao-log-format-'));
  const now = Date.now();
  await writeFormat1Store(dir, [recent(fixture.finished, now), recent(fixture.interrupted, now)]);
  return { store: await openPgliteStore({ dataDir: dir }), dir };
}

describe.each([
  { rows: "committed by today's code (row format 2)", format1: false },
  { rows: 'stored as row format 1 and migrated', format1: true },
])('the log format of runs journaled before durability points, $rows', ({ format1 }) => {
  let store: Store;
  let engine: Engine;
  let dir: string | undefined;
  beforeAll(async () => {
    if (format1) {
      ({ store, dir } = await openFormat1());
      const old = fixture.interrupted;
      // Read back exactly as the old code wrote them.
      const log = await allEvents(store, old.run.id);
      expect(log.map((e) => [e.id, e.seq, e.type, e.from, e.to, e.causationId, e.trace])).toEqual(
        old.events.map((e) => [e.id, e.seq, e.type, e.from, e.to, e.causationId, e.trace]),
      );
      expect(log.map((e) => e.payload)).toEqual(old.events.map((e) => e.payload ?? null));
    } else {
      store = await openPgliteStore();
      await load(store, fixture.finished);
      await load(store, fixture.interrupted);
    }
    await new Promise((r) => setTimeout(r, 20)); // the old node's leases lapse
    const llm = new OfflineLlm();
    engine = await Engine.create({
      store,
      bus: new InProcessBus(),
      llm: () => llm,
      tools: toolsWith(),
      graphs: [...exampleGraphs] as GraphBuilder<unknown>[],
      nodeId: 'new',
    });
  });
  afterAll(async () => {
    await engine?.shutdown();
    await store?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a run stopped mid-swarm by the old code resumes with the new: its log kept as written, gapless, each effect once, the output of a run made now', async () => {
    const old = fixture.interrupted;
    expect(old.run.status).toBe('running');
    const done = await until(
      async () => {
        const r = await store.getRun(old.run.id);
        return r && r.status !== 'running' && r.status !== 'pending' ? r : undefined;
      },
      'the old run to be resumed and end',
      30_000,
    );
    expect(done.status).toBe('succeeded');
    const log = await allEvents(store, old.run.id);
    expect(log.map((e) => e.seq)).toEqual(log.map((_, i) => i + 1));
    expect(new Set(log.map((e) => e.id)).size).toBe(log.length);
    // What the old code wrote is kept as it was, and comes first.
    expect(log.slice(0, old.events.length).map((e) => e.id)).toEqual(old.events.map((e) => e.id));
    for (const type of ['llm.response', 'tool.result', 'budget.granted']) {
      const keys = log.filter((e) => e.type === type).map((e) => (e.payload as { key: string }).key);
      expect(new Set(keys).size, `${type} once per key`).toBe(keys.length);
    }
    // The same run made from scratch by the new code ends the same.
    const fresh = await engine.waitForRun((await engine.startRun({ graph: 'research-swarm', input: old.run.input })).id, 30_000);
    expect(fresh.status).toBe('succeeded');
    expect(done.output).toEqual(fresh.output);
  });

  it('a recorded replay of a run the old code finished, from every step, reproduces its log', async () => {
    const old = fixture.finished;
    const original = (await store.getRun(old.run.id))!;
    expect(original.status).toBe('succeeded');
    for (const cp of old.checkpoints) {
      const step = cp.step - 1;
      const replay = await engine.waitForRun((await engine.replay(original.id, { fromStep: step, mode: 'recorded' })).id, 30_000);
      const label = `from step ${step}`;
      expect(replay.replay?.divergence ?? null, label).toBeNull();
      expect(replay.status, label).toBe('succeeded');
      expect(replay.output, label).toEqual(original.output);
      const d = await diffRuns(store, original, replay);
      expect(d.first, label).toBeNull();
      expect(d.nodes, label).toEqual([]);
    }
  });
});
