import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { loadConfig } from '@ao/runtime';
import type { Envelope } from '@ao/runtime';
import { createTestDatabase, dropNatsPrefix, natsAvailable, natsPrefix, postgresAvailable, TEST_NATS_URL } from '@ao/runtime/testing';
import { buildApp, startRuntime } from '../src/mod.js';
import type { Runtime } from '../src/mod.js';

const up = (await postgresAvailable()) && (await natsAvailable());

describe.skipIf(!up)('where things ran: a gateway without a node and a runtime node on NATS + Postgres', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let dir: string;
  const prefix = natsPrefix('wr');
  let gateway: Runtime;
  let node: Runtime;
  let app: FastifyInstance;

  beforeAll(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'ao-where-'));
    const env = { DATABASE_URL: db.url, NATS_URL: TEST_NATS_URL, AO_NATS_PREFIX: prefix, AO_DATA_DIR: dir, AO_LLM_LATENCY_MS: '20' };
    gateway = await startRuntime(loadConfig({ ...env, AO_NODE_ID: 'wr-gateway' }), { passive: true });
    node = await startRuntime(loadConfig({ ...env, AO_NODE_ID: 'wr-node' }));
    app = await buildApp(gateway.engine, { inspectorDir: false });
  });
  afterAll(async () => {
    await app?.close();
    await node?.close();
    await gateway?.close();
    await db?.drop();
    await dropNatsPrefix(prefix);
    await rm(dir, { recursive: true, force: true });
  });

  it('says in /health that it is a gateway without a node', async () => {
    const res = await app.inject({ url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'ok', node: 'wr-gateway', role: 'gateway', bus: 'nats', activeRuns: 0 });
    const nodeApp = await buildApp(node.engine, { inspectorDir: false });
    expect((await nodeApp.inject({ url: '/health' })).json()).toMatchObject({ node: 'wr-node', role: 'node' });
    await nodeApp.close();
  });

  it("shows a run's host and where its steps ran, and in its events the node that ran each swarm branch", async () => {
    const res = await app.inject({ method: 'POST', url: '/runs', payload: { graph: 'research-swarm', input: { topic: 'where' } } });
    expect(res.statusCode).toBe(202);
    const { id } = res.json() as { id: string };
    expect((await gateway.engine.waitForRun(id, 60_000)).status).toBe('succeeded');
    const run = (await app.inject({ url: `/runs/${id}` })).json() as { owner: string | null; ranOn?: Array<{ node: string; done: number }> };
    // Every step and branch ran on the one node; the gateway ran none.
    expect(run.ranOn?.map((w) => w.node)).toEqual(['wr-node']);
    expect(run.ranOn![0]!.done).toBeGreaterThan(3);
    // The host holds it until its lease is given up (it ended: no node holds it, or its host still does).
    expect([null, 'wr-node']).toContain(run.owner);
    const events = (await app.inject({ url: `/runs/${id}/events?limit=1000` })).json() as { events: Envelope[] };
    const branches = events.events.filter((e) => e.type === 'branch.completed');
    expect(branches.length).toBeGreaterThan(0);
    for (const b of branches) expect((b.payload as { ranOn?: string }).ranOn).toBe('wr-node');
  }, 90_000);

  it("lists in /nodes each node's runs, tasks and load, and the gateway is not one of them", async () => {
    const nodes = await (async () => {
      for (let i = 0; i < 100; i++) {
        const all = ((await app.inject({ url: '/nodes' })).json() as { nodes: Array<Record<string, unknown>> }).nodes;
        if (all.length && (all[0]!.tasksDone as number) > 0) return all;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error('the node did not report its tasks');
    })();
    expect(nodes.map((n) => n.id)).toEqual(['wr-node']);
    expect(nodes[0]).toMatchObject({
      runs: expect.any(Array),
      activeRuns: expect.any(Number),
      activeTasks: expect.any(Number),
      load: { cpu: expect.any(Number), eventLoopDelayMs: expect.any(Number), rssBytes: expect.any(Number) },
    });
    expect((nodes[0]!.load as { rssBytes: number }).rssBytes).toBeGreaterThan(0);
  }, 30_000);
});
