import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { connectNatsBus, OfflineLlm, openPgStore } from '@ao/runtime';
import type { Bus, LlmPort, NatsBus, RunSignal, Store, Subscription } from '@ao/runtime';
import { createTestDatabase, dropNatsPrefix, natsAvailable, natsPrefix, postgresAvailable, TEST_NATS_URL } from '@ao/runtime/testing';
import { Engine } from '../src/mod.js';
import { toolsWith } from './harness.js';

const up = (await postgresAvailable()) && (await natsAvailable());

const two = graph('watch-two')
  .node('a', { agent: 'pipeline', instructions: 'First.' })
  .node('b', { agent: 'pipeline', instructions: 'Second.' })
  .edge('a', 'b') as GraphBuilder<unknown>;

/** A swarm's branches are node tasks (a pipeline's steps run on the run's host). */
const fan = graph('watch-fan')
  .node('fan', { agent: 'swarm', concurrency: 2, instructions: 'Branch.' })
  .node('after', { agent: 'pipeline', instructions: 'After.' })
  .edge('fan', 'after') as GraphBuilder<unknown>;

/** A bus that counts per-run subscriptions and can drop every run signal (as when they are lost). */
function watched(bus: NatsBus, o: { drop: boolean }): Bus & { perRun: string[]; signals: RunSignal[] } {
  const perRun: string[] = [];
  const signals: RunSignal[] = [];
  return Object.assign(Object.create(bus) as Bus, {
    perRun,
    signals,
    subscribe: (runId: string, h: Parameters<Bus['subscribe']>[1]): Subscription => {
      perRun.push(runId);
      return bus.subscribe(runId, h);
    },
    watchRuns: (h: (s: RunSignal) => void): Subscription =>
      bus.watchRuns((s) => {
        signals.push(s);
        if (!o.drop) h(s);
      }),
  });
}

describe.skipIf(!up)('a gateway without a node follows runs hosted elsewhere by push (NATS run signals)', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const prefix = natsPrefix('rw');
  const otherPrefix = natsPrefix('rw');
  const stores: Store[] = [];
  const buses: NatsBus[] = [];
  const engines: Engine[] = [];

  const open = async (id: string, o: { passive?: boolean; drop?: boolean; llm?: LlmPort; prefix?: string } = {}) => {
    const store = await openPgStore({ url: db.url });
    const nats = await connectNatsBus({ url: TEST_NATS_URL, prefix: o.prefix ?? prefix, name: id });
    stores.push(store);
    buses.push(nats);
    const bus = watched(nats, { drop: o.drop ?? false });
    const llm = o.llm ?? new OfflineLlm({ latencyMs: 20 });
    const engine = await Engine.create({ store, bus, llm: () => llm, tools: toolsWith(), nodeId: id, sweepIntervalMs: 0, leaseMs: 2_000, claimIntervalMs: 200, graphs: [two, fan], ...(o.passive ? { passive: true } : {}) });
    engines.push(engine);
    return { engine, bus };
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    await open('rw-node');
  });
  afterAll(async () => {
    for (const e of engines) await e.shutdown();
    for (const b of buses) await b.close();
    for (const s of stores) await s.close();
    await db?.drop();
    await dropNatsPrefix(prefix);
    await dropNatsPrefix(otherPrefix);
  });

  it("learns that another node's runs ended from their run.finished signals, with no consumer per run", async () => {
    const { engine, bus } = await open('rw-gateway', { passive: true });
    const runs = await Promise.all(Array.from({ length: 6 }, (_, i) => engine.startRun({ graph: 'watch-two', input: { i } })));
    const done = await Promise.all(runs.map((r) => engine.waitForRun(r.id, 30_000)));
    expect(done.map((r) => r.status)).toEqual(runs.map(() => 'succeeded'));
    expect(done.every((r) => r.owner !== 'rw-gateway')).toBe(true);
    // Followed through the one shared watch: no subscription of any run's envelopes.
    expect(bus.perRun).toEqual([]);
    for (const r of runs) expect(bus.signals.filter((s) => s.runId === r.id).map((s) => s.type)).toContain('run.finished');
  }, 60_000);

  it("names the node that ran each node task (a swarm's branch) in its last word; a recorded replay on one node still matches", async () => {
    const host = engines[0]!;
    const run = await host.startRun({ graph: 'watch-fan', input: { where: true } });
    expect((await host.waitForRun(run.id, 30_000)).status).toBe('succeeded');
    const events = await stores[0]!.listEvents(run.id, { limit: 1_000 });
    const branches = events.filter((e) => e.type === 'branch.completed').map((e) => (e.payload as { ranOn?: string }).ranOn);
    expect(branches).toEqual(['rw-node', 'rw-node']);
    // What ran on the host names it too: the swarm node's join and the step after it.
    const steps = events.filter((e) => e.type === 'node.completed').map((e) => (e.payload as { ranOn?: string }).ranOn);
    expect(steps).toEqual(['rw-node', 'rw-node']);
    expect(await host.ranOn(run.id)).toEqual([{ node: 'rw-node', done: 4, firstSeq: expect.any(Number), lastSeq: expect.any(Number) }]);
    const replay = await host.waitForRun((await host.replay(run.id, { fromStep: 0, mode: 'recorded' })).id, 30_000);
    expect(replay.status).toBe('succeeded');
    expect(replay.replay?.divergence ?? null).toBeNull();
  }, 60_000);

  it('shows the hosts a run had: the one that ran its first step, then the one that took it over', async () => {
    // Its own queue (NATS prefix), so it is the one that takes the run; the database is shared, so
    // once it lets the run go the other node's claim loop resumes it.
    // Its model answers the first call and never the second: the run is mid-way when the node stops.
    const inner = new OfflineLlm();
    let calls = 0;
    const stalling: LlmPort = {
      provider: inner.provider,
      complete: (req, signal) =>
        ++calls === 1 ? inner.complete(req, signal) : new Promise((_, reject) => signal?.addEventListener('abort', () => reject(new Error('stopped')), { once: true })),
    };
    const { engine: first } = await open('rw-first', { llm: stalling, prefix: otherPrefix });
    const gw = engines[0]!;
    const run = await first.startRun({ graph: 'watch-two', input: { moved: true } });
    for (let i = 0; ; i++) {
      const evs = await stores[0]!.listEvents(run.id, { limit: 1_000 });
      if (evs.some((e) => e.type === 'node.completed')) break;
      if (i > 200) throw new Error('the first step did not complete');
      await new Promise((r) => setTimeout(r, 50));
    }
    await first.shutdown(); // gives its leases up: a live node resumes the run at its next claim
    expect((await gw.waitForRun(run.id, 30_000)).status).toBe('succeeded');
    const where = await gw.ranOn(run.id);
    expect(where.map((w) => [w.node, w.done])).toEqual([
      ['rw-first', 1],
      ['rw-node', 1],
    ]);
    expect(where[0]!.lastSeq).toBeLessThan(where[1]!.firstSeq);
  }, 60_000);

  it('still sees a run end when every signal is lost (it reads the row again now and then)', async () => {
    const { engine, bus } = await open('rw-deaf', { passive: true, drop: true });
    const run = await engine.startRun({ graph: 'watch-two', input: {} });
    expect((await engine.waitForRun(run.id, 30_000)).status).toBe('succeeded');
    expect(bus.signals.some((s) => s.runId === run.id && s.type === 'run.finished')).toBe(true);
  }, 60_000);
});
