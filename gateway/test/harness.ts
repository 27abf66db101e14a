import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { GraphBuilder } from '@ao/graphs';
import { loadConfig } from '@ao/runtime';
import type { Envelope, LlmPort } from '@ao/runtime';
import { createTestDatabase, dropNatsPrefix, natsPrefix, TEST_NATS_URL } from '@ao/runtime/testing';
import { buildApp, startRuntime } from '../src/mod.js';
import type { Runtime } from '../src/mod.js';

/** The embedded default, Postgres, or Postgres with the NATS JetStream bus (a cluster of one). */
export type StoreKind = 'pglite' | 'postgres' | 'postgres+nats';

export interface TestGateway {
  app: FastifyInstance;
  rt: Runtime;
  close(): Promise<void>;
  /** POST /runs and wait for the run to end; returns the final run view. */
  runToEnd(body: unknown): Promise<{ id: string; status: string; [k: string]: unknown }>;
  events(id: string): Promise<Envelope[]>;
}

/** A gateway over a fresh store of the given kind (in-memory-like temp dir for PGlite, a new database for Postgres). */
export async function testGateway(kind: StoreKind, o: { llm?: LlmPort; graphs?: GraphBuilder<unknown>[] } = {}): Promise<TestGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'ao-test-'));
  const db = kind !== 'pglite' ? await createTestDatabase() : undefined;
  const prefix = kind === 'postgres+nats' ? natsPrefix('gw') : undefined;
  const config = loadConfig({
    AO_DATA_DIR: dir,
    ...(db ? { DATABASE_URL: db.url } : {}),
    ...(prefix ? { NATS_URL: TEST_NATS_URL, AO_NATS_PREFIX: prefix } : {}),
    AO_NODE_ID: 'test',
  });
  const rt = await startRuntime(config, o);
  const app = await buildApp(rt.engine, { inspectorDir: false });
  const tg: TestGateway = {
    app,
    rt,
    async close() {
      await app.close();
      await rt.close();
      await db?.drop();
      if (prefix) await dropNatsPrefix(prefix);
      await rm(dir, { recursive: true, force: true });
    },
    async runToEnd(body) {
      const res = await app.inject({ method: 'POST', url: '/runs', payload: body as object });
      if (res.statusCode !== 202) throw new Error(`POST /runs: ${res.statusCode} ${res.body}`);
      const { id } = res.json() as { id: string };
      await rt.engine.waitForRun(id, 30_000);
      return (await app.inject({ method: 'GET', url: `/runs/${id}` })).json();
    },
    async events(id) {
      const res = await app.inject({ method: 'GET', url: `/runs/${id}/events?limit=1000` });
      return (res.json() as { events: Envelope[] }).events;
    },
  };
  return tg;
}

/** A model wrapper that records how many calls were in flight at once. */
export function concurrencyProbe(inner: LlmPort): LlmPort & { maxInFlight: number } {
  let inFlight = 0;
  const probe = {
    provider: inner.provider,
    maxInFlight: 0,
    async complete(req: Parameters<LlmPort['complete']>[0], signal?: AbortSignal) {
      inFlight += 1;
      probe.maxInFlight = Math.max(probe.maxInFlight, inFlight);
      try {
        return await inner.complete(req, signal);
      } finally {
        inFlight -= 1;
      }
    },
  };
  return probe;
}
