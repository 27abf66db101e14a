import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, dropNatsPrefix, natsAvailable, natsPrefix, postgresAvailable, TEST_NATS_URL } from '@ao/runtime/testing';
import { natsServer, startNodeProcess, startServer } from './process.js';
import { expectWholeLog, json, post, waitAll } from './runs.js';
import type { Env } from './runs.js';

const pgUp = await postgresAvailable();
const natsUp = pgUp && (await natsAvailable());

describe.skipIf(!natsUp)('a cluster: a gateway and three runtime nodes on NATS JetStream and Postgres', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let dir: string;
  const prefix = natsPrefix('cl');
  beforeAll(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'ao-cluster-'));
  });
  afterAll(async () => {
    await db?.drop();
    await dropNatsPrefix(prefix);
    await rm(dir, { recursive: true, force: true });
  });

  it('runs 120 research-swarm runs across the nodes; one is SIGKILLed mid-way and every run still completes, whole', async () => {
    const env = {
      DATABASE_URL: db.url,
      NATS_URL: TEST_NATS_URL,
      AO_NATS_PREFIX: prefix,
      AO_DATA_DIR: dir,
      AO_LEASE_MS: '3000',
      AO_NATS_ACK_WAIT_MS: '6000',
      AO_LLM_LATENCY_MS: '15',
    };
    const gateway = await startServer({ ...env, AO_NODE_ID: 'gateway' }, ['--no-node']);
    const nodes = await Promise.all(['n1', 'n2', 'n3'].map((id) => startNodeProcess({ ...env, AO_NODE_ID: id })));
    try {
      const members = await json<{ nodes: Array<{ id: string }> }>(`${gateway.url}/nodes`);
      expect(members.nodes.map((n) => n.id)).toEqual(['n1', 'n2', 'n3']);
      const ids: string[] = [];
      for (let i = 0; i < 120; i++) ids.push((await post(`${gateway.url}/runs`, { graph: 'research-swarm', input: { topic: `topic ${i}` } })).id);
      // Kill one node once a fair share of the work is done, with runs in flight on it.
      for (;;) {
        const done = (await json<{ runs: unknown[] }>(`${gateway.url}/runs?status=succeeded&limit=100`)).runs.length;
        if (done >= 30) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const before = (await json<{ nodes: Array<{ id: string; runsHosted: number; activeRuns: number; activeTasks?: number }> }>(`${gateway.url}/nodes`)).nodes;
      // The victim was hosting runs when it died: they must be taken over.
      expect(before.find((n) => n.id === 'n1')!.activeRuns).toBeGreaterThan(0);
      const victim = nodes[0]!;
      await victim.kill9();
      const finished = await waitAll(gateway.url, ids, 120_000);
      expect([...finished.values()].filter((r) => r.status !== 'succeeded')).toEqual([]);
      for (const id of ids) {
        const events = (await json<{ events: Array<Env & { trace: { traceparent: string } | null }> }>(`${gateway.url}/runs/${id}/events?limit=1000`)).events;
        expectWholeLog(events, `run ${id}`);
        // The trace id the API gave for the run is the one its envelopes (and spans) carry, whichever node hosted it.
        const { traceId } = await json<{ traceId: string }>(`${gateway.url}/runs/${id}`);
        expect(events[0]!.trace!.traceparent.split('-')[1], `run ${id}`).toBe(traceId);
      }
      const after = (await json<{ nodes: Array<{ id: string; runsHosted: number; tasksDone: number }> }>(`${gateway.url}/nodes`)).nodes;
      const survivors = after.filter((n) => n.id !== 'n1');
      expect(survivors.map((n) => n.id)).toEqual(['n2', 'n3']);
      for (const n of survivors) {
        expect(n.runsHosted, `${n.id} hosted runs`).toBeGreaterThan(0);
        // Node executions and swarm branches are pulled from the task queue by every node.
        expect(n.tasksDone, `${n.id} ran node tasks`).toBeGreaterThan(0);
      }
      console.log(
        `[cluster] 120 runs; before the kill: ${before.map((n) => `${n.id} hosted ${n.runsHosted} (${n.activeRuns} active, ${n.activeTasks ?? 0} tasks running)`).join(', ')}; ` +
          `after: ${after.map((n) => `${n.id} hosted ${n.runsHosted}, ran ${n.tasksDone} node tasks`).join(', ')}`,
      );
    } catch (e) {
      for (const [i, n] of nodes.entries()) console.error(`--- n${i + 1} log (tail) ---\n${n.log().slice(-3000)}`);
      throw e;
    } finally {
      for (const n of nodes) await n.stop();
      await gateway.stop();
    }
  }, 240_000);
});

describe.skipIf(!natsUp)('a NATS restart mid-run', () => {
  it('pauses the runs and resumes them on reconnect: all complete, nothing lost', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ao-nats-restart-'));
    const db = await createTestDatabase();
    const nats = await natsServer(join(dir, 'js'));
    await nats.start();
    const server = await startServer({
      DATABASE_URL: db.url,
      NATS_URL: nats.url,
      AO_NATS_PREFIX: 'restart',
      AO_DATA_DIR: dir,
      AO_LLM_LATENCY_MS: '150',
      AO_NODE_ID: 'solo',
    });
    try {
      const ids: string[] = [];
      for (let i = 0; i < 8; i++) ids.push((await post(`${server.url}/runs`, { graph: 'research-swarm', input: { topic: `restart ${i}` } })).id);
      // Mid-run: some events are in, none has finished.
      for (;;) {
        const running = (await json<{ runs: unknown[] }>(`${server.url}/runs?status=running&limit=100`)).runs.length;
        if (running >= 4) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await nats.stop();
      await new Promise((r) => setTimeout(r, 1500));
      await nats.start();
      const finished = await waitAll(server.url, ids, 90_000);
      expect(
        [...finished.values()].map((r) => (r.status === 'succeeded' ? r.status : `${r.status}: ${JSON.stringify((r as { error?: unknown }).error)}`)),
      ).toEqual(ids.map(() => 'succeeded'));
      for (const id of ids) expectWholeLog((await json<{ events: Env[] }>(`${server.url}/runs/${id}/events?limit=1000`)).events, `run ${id}`);
    } finally {
      await server.stop();
      await nats.stop();
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 150_000);
});
