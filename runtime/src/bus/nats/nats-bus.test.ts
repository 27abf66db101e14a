import { afterAll, describe, expect, it } from 'vitest';
import { newEnvelopeId } from '../../envelope/mod.js';
import type { Envelope } from '../../envelope/mod.js';
import { natsAvailable, natsPrefix, TEST_NATS_URL } from '../../testing/nats.js';
import { busConformance } from '../conformance.js';
import { NatsBus } from './nats-bus.js';
import type { NodeInfo } from '../port.js';

const available = await natsAvailable();
const opened: NatsBus[] = [];
const open = async (prefix = natsPrefix(), o: { maxDeliver?: number; ackWaitMs?: number } = {}) => {
  const bus = await NatsBus.connect({ url: TEST_NATS_URL, prefix, ...o });
  opened.push(bus);
  return bus;
};
afterAll(async () => {
  for (const b of opened) {
    const P = (b.streams[0] ?? '').replace(/_EVENTS$/, '');
    for (const s of [`${P}_EVENTS`, `${P}_WORK`, `${P}_DLQ`, `KV_${P.toLowerCase()}_nodes`]) await b.manager.streams.delete(s).catch(() => undefined);
    await b.close();
  }
});

const until = async (cond: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
};

const env = (runId: string, seq: number): Envelope => ({
  id: newEnvelopeId(),
  runId,
  seq,
  from: 'supervisor' as Envelope['from'],
  to: 'supervisor/a' as Envelope['to'],
  type: 'node.start',
  payload: { n: seq },
  causationId: null,
  trace: null,
  time: new Date().toISOString(),
});

if (available) busConformance('nats jetstream', () => open());

describe.skipIf(!available)('NATS JetStream bus', () => {
  it('drops a re-published envelope: the envelope id is the JetStream message id', async () => {
    const bus = await open();
    const got: string[] = [];
    await bus.subscribe('r1', (e) => void got.push(e.id)).ready;
    const e = env('r1', 1);
    await bus.publish(e);
    await bus.publish(e);
    await bus.publish(env('r1', 2));
    await until(() => got.length >= 2);
    await new Promise((r) => setTimeout(r, 100));
    expect(got).toHaveLength(2);
    expect(got[0]).toBe(e.id);
  });

  it("carries an envelope past NATS's max payload in parts, whole and in order, alone or in a commit, and what follows it too", async () => {
    const bus = await open();
    const got: Envelope[] = [];
    const all: Envelope[] = [];
    await bus.subscribe('r-big', (e) => void got.push(e)).ready;
    await bus.subscribe('*', (e) => void (e.runId === 'r-big' ? all.push(e) : undefined)).ready;
    // 3 MB of text: three times the server's default max payload, so whole it would be refused.
    const big = { ...env('r-big', 1), payload: { text: 'é'.repeat(1_500_000) } };
    const after = env('r-big', 2);
    await bus.publish(big);
    await bus.publishCommit([after, { ...env('r-big', 3), payload: { text: 'x'.repeat(1_200_000) } }, env('r-big', 4)]);
    await until(() => got.length >= 4 && all.length >= 4, 20_000);
    expect(got.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(got[0]).toEqual(big);
    expect(all.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect((all[2]!.payload as { text: string }).text).toHaveLength(1_200_000);
  });

  it('delivers a re-delivery (again) even though its envelope id was published before', async () => {
    const bus = await open();
    const got: string[] = [];
    await bus.subscribe('r1', (e) => void got.push(e.id)).ready;
    const e = env('r1', 1);
    await bus.publish(e);
    await bus.publish(e, { again: true });
    await until(() => got.length >= 2);
    expect(got).toEqual([e.id, e.id]);
  });

  it('hands each work item to one consumer among several, and acknowledges it once handled', async () => {
    const prefix = natsPrefix();
    const a = await open(prefix);
    const b = await open(prefix);
    const seen: Array<[string, string]> = [];
    await a.queue.consume('runs', async (p) => void seen.push(['a', (p as { id: string }).id])).ready;
    await b.queue.consume('runs', async (p) => void seen.push(['b', (p as { id: string }).id])).ready;
    for (let i = 0; i < 40; i++) await a.queue.enqueue('runs', `run-${i}`, { id: `run-${i}` });
    await a.queue.enqueue('runs', 'run-0', { id: 'run-0' }); // a repeat within the window is dropped
    await until(() => seen.length >= 40);
    await new Promise((r) => setTimeout(r, 200));
    expect(seen.map(([, id]) => id).sort()).toEqual(Array.from({ length: 40 }, (_, i) => `run-${i}`).sort());
    expect(new Set(seen.map(([who]) => who)).size).toBe(2);
    const info = await a.manager.consumers.info(`${prefix.toUpperCase()}_WORK`, `${prefix}-runs`);
    expect(info.num_ack_pending).toBe(0);
  });

  it('redelivers a failing item with backoff, then parks it on the dead-letter subject', async () => {
    const bus = await open(natsPrefix(), { maxDeliver: 3 });
    let tries = 0;
    await bus.queue.consume('runs', async () => {
      tries += 1;
      throw new Error('no node can take this');
    }).ready;
    await bus.queue.enqueue('runs', 'poison', { id: 'poison' });
    await until(() => tries >= 3, 15_000);
    await until(() => false, 300).catch(() => undefined);
    const dead = await bus.deadLetters('runs');
    expect(dead).toEqual([expect.objectContaining({ queue: 'runs', payload: { id: 'poison' }, error: 'no node can take this', deliveries: 3 })]);
    expect(tries).toBe(3);
  });

  it('lists the nodes that beat, and forgets one that leaves', async () => {
    const bus = await open();
    const now = new Date().toISOString();
    await bus.membership.beat({ id: 'n1', started: now, runsHosted: 2, activeRuns: 1, tasksDone: 3, lastHeartbeat: now });
    await bus.membership.beat({ id: 'n2', started: now, runsHosted: 0, activeRuns: 0, tasksDone: 0, lastHeartbeat: now });
    expect((await bus.membership.list()).map((n) => n.id)).toEqual(['n1', 'n2']);
    await bus.membership.leave('n2');
    expect((await bus.membership.list()).map((n) => [n.id, n.tasksDone])).toEqual([['n1', 3]]);
  });

  it('lists each node once, also when nodes beat while the list is read (regression: a 4th entry for 3 nodes)', async () => {
    const bus = await open();
    const ids = ['b1', 'b2', 'b3'];
    const info = (id: string, load?: NodeInfo['load']) => ({
      id,
      started: '2026-12-04T00:00:00.000Z',
      runsHosted: 0,
      activeRuns: 1,
      tasksDone: 0,
      runs: ['r1'],
      ...(load ? { load } : {}),
      lastHeartbeat: new Date().toISOString(),
    });
    for (const id of ids) await bus.membership.beat(info(id, { cpu: 0.25, eventLoopDelayMs: 3, rssBytes: 1_000 }));
    let beating = true;
    const beats = (async () => {
      while (beating) for (const id of ids) await bus.membership.beat(info(id, { cpu: 0.25, eventLoopDelayMs: 3, rssBytes: 1_000 }));
    })();
    try {
      for (let i = 0; i < 30; i++) expect((await bus.membership.list()).map((n) => n.id)).toEqual(ids);
    } finally {
      beating = false;
      await beats;
    }
    // Runs hosted now and the load travel with the entry.
    expect((await bus.membership.list())[0]).toMatchObject({ runs: ['r1'], load: { cpu: 0.25, eventLoopDelayMs: 3, rssBytes: 1_000 } });
  });
});
