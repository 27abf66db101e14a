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

/**
 * A bus that counts per-run subscriptions, can drop every run signal (as when they are lost), and
 * keeps the watch's `onGap` so a test can say what a reconnect says (signals may have been lost).
 */
function watched(bus: NatsBus, o: { drop: boolean }): Bus & { perRun: string[]; signals: RunSignal[]; gap: () => void } {
  const perRun: string[] = [];
  const signals: RunSignal[] = [];
  const gaps: Array<() => void> = [];
  return Object.assign(Object.create(bus) as Bus, {
    perRun,
    signals,
    gap: () => {
      for (const g of gaps) g();
    },
    subscribe: (runId: string, h: Parameters<Bus['subscribe']>[1]): Subscription => {
      perRun.push(runId);
      return bus.subscribe(runId, h);
    },
    watchRuns: (h: (s: RunSignal) => void, w: { onGap?: () => void } = {}): Subscription => {
      if (w.onGap) gaps.push(w.onGap);
      return bus.watchRuns((s) => {
        signals.push(s);
        if (!o.drop) h(s);
      }, w);
    },
  });
}

/** `store` with its `getRun` calls recorded in `reads`. */
function counting(store: Store, reads: string[]): Store {
  return new Proxy(store, {
    get(target, key) {
      if (key === 'getRun') {
        return (id: string) => {
          reads.push(id);
          return target.getRun(id);
        };
      }
      const v: unknown = Reflect.get(target, key, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

/** Wait (on the store's state) until `runId` has ended. */
async function endedInStore(store: Store, runId: string): Promise<void> {
  for (let i = 0; ; i++) {
    const r = await store.getRun(runId);
    if (r && ['succeeded', 'failed', 'cancelled'].includes(r.status)) return;
    if (i > 600) throw new Error(`run ${runId} did not end`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

describe.skipIf(!up)('a gateway without a node follows runs hosted elsewhere by push (NATS run signals)', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  const prefix = natsPrefix('rw');
  const otherPrefix = natsPrefix('rw');
  const heldPrefix = natsPrefix('rw');
  const gapPrefix = natsPrefix('rw');
  const stores: Store[] = [];
  const buses: NatsBus[] = [];
  const engines: Engine[] = [];

  const open = async (id: string, o: { passive?: boolean; drop?: boolean; llm?: LlmPort; prefix?: string; reads?: string[]; followResyncMs?: number } = {}) => {
    const store = await openPgStore({ url: db.url });
    const nats = await connectNatsBus({ url: TEST_NATS_URL, prefix: o.prefix ?? prefix, name: id });
    stores.push(store);
    buses.push(nats);
    const bus = watched(nats, { drop: o.drop ?? false });
    const llm = o.llm ?? new OfflineLlm({ latencyMs: 20 });
    const engine = await Engine.create({
      store: o.reads ? counting(store, o.reads) : store,
      bus,
      llm: () => llm,
      tools: toolsWith(),
      nodeId: id,
      sweepIntervalMs: 0,
      leaseMs: 2_000,
      claimIntervalMs: 200,
      graphs: [two, fan],
      ...(o.passive ? { passive: true } : {}),
      ...(o.followResyncMs !== undefined ? { followResyncMs: o.followResyncMs } : {}),
    });
    engines.push(engine);
    return { engine, bus, store };
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
    await dropNatsPrefix(heldPrefix);
    await dropNatsPrefix(gapPrefix);
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
        ++calls === 1
          ? inner.complete(req, signal)
          : new Promise((_, reject) => signal?.addEventListener('abort', () => reject(new Error('stopped')), { once: true })),
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

  /** A model that tells when it is first asked and answers nothing until released. */
  const holdingModel = () => {
    const inner = new OfflineLlm();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let asked!: () => void;
    const modelAsked = new Promise<void>((r) => (asked = r));
    const llm: LlmPort = {
      provider: inner.provider,
      complete: async (req, signal) => {
        asked();
        await held;
        return inner.complete(req, signal);
      },
    };
    return { llm, release, modelAsked };
  };

  /** Until `reads` holds `n` reads of `runId` (the follower has read the row that often). */
  const readsOf = async (reads: string[], runId: string, n: number) => {
    for (let i = 0; reads.filter((id) => id === runId).length < n; i++) {
      if (i > 600) throw new Error(`the row of ${runId} was not read ${n} times`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  it('reads the row of a run hosted elsewhere once, then only when its run.finished signal comes: no polling while it runs', async () => {
    // Its own queue, so the node whose model is held takes the run. Regression: the follower read
    // the row every second while the run was under way.
    const model = holdingModel();
    await open('rw-held', { llm: model.llm, prefix: heldPrefix });
    const reads: string[] = [];
    const { engine } = await open('rw-counting', { passive: true, prefix: heldPrefix, reads, followResyncMs: 600_000 });
    const run = await engine.startRun({ graph: 'watch-two', input: { held: true } });
    reads.length = 0;
    const waiting = engine.waitForRun(run.id, 60_000);
    await model.modelAsked;
    await readsOf(reads, run.id, 1);
    // The run stays under way a while (the old follower read the row every second meanwhile).
    await new Promise((r) => setTimeout(r, 2_500));
    const whileRunning = reads.filter((id) => id === run.id).length;
    model.release();
    expect((await waiting).status).toBe('succeeded');
    expect(whileRunning).toBe(1);
    expect(reads.filter((id) => id === run.id)).toHaveLength(2);
  }, 60_000);

  it('when every signal is lost, reads the row again once the bus says signals may have been lost (a reconnect)', async () => {
    const model = holdingModel();
    await open('rw-held-gap', { llm: model.llm, prefix: gapPrefix });
    const reads: string[] = [];
    const { engine, bus, store } = await open('rw-deaf', { passive: true, drop: true, prefix: gapPrefix, reads, followResyncMs: 600_000 });
    const run = await engine.startRun({ graph: 'watch-two', input: {} });
    reads.length = 0;
    let seen = false;
    const waiting = engine.waitForRun(run.id, 30_000).then((r) => ((seen = true), r));
    await model.modelAsked;
    await readsOf(reads, run.id, 1);
    model.release();
    await endedInStore(store, run.id);
    expect(bus.signals.some((s) => s.runId === run.id && s.type === 'run.finished')).toBe(true);
    expect(seen).toBe(false);
    bus.gap();
    expect((await waiting).status).toBe('succeeded');
  }, 60_000);

  it('when every signal is lost and the bus never reconnects, still sees the run end at its last-resort read', async () => {
    const { engine } = await open('rw-deaf-resync', { passive: true, drop: true, followResyncMs: 200 });
    const run = await engine.startRun({ graph: 'watch-two', input: {} });
    expect((await engine.waitForRun(run.id, 30_000)).status).toBe('succeeded');
  }, 60_000);
});
