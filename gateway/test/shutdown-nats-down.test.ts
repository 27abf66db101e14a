import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createTestDatabase, natsAvailable, natsPrefix, postgresAvailable } from '@ao/runtime/testing';
import { natsServer, natsServerInstalled, startNodeProcess, startServer } from './process.js';
import { expectWholeLog, json, post, waitAll } from './runs.js';
import type { Env } from './runs.js';

// Under CI each of these throws rather than skip (a missing service fails the suite).
const pgUp = await postgresAvailable();
const natsUp = pgUp && (await natsAvailable()) && natsServerInstalled();

/** How long a node told to stop with NATS down may take to exit. */
const EXIT_BOUND_MS = 15_000;

describe.skipIf(!natsUp)('a runtime node told to stop while NATS is down', () => {
  it('exits promptly, and a fresh node finishes every run, whole, once NATS is back', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ao-shutdown-nats-down-'));
    const db = await createTestDatabase();
    const nats = await natsServer(join(dir, 'js'));
    const started: Array<{ kill9: () => Promise<void> }> = [];
    try {
      await nats.start();
      const env = {
        DATABASE_URL: db.url,
        NATS_URL: nats.url,
        AO_NATS_PREFIX: natsPrefix('sd'),
        AO_DATA_DIR: dir,
        AO_LEASE_MS: '3000',
        AO_LLM_LATENCY_MS: '150',
      };
      // Reads and submissions through a gateway with no runtime node; the runs go to the node.
      const gateway = await startServer({ ...env, AO_NODE_ID: 'gateway' }, ['--no-node']);
      started.push(gateway);
      const n1 = await startNodeProcess({ ...env, AO_NODE_ID: 'n1' });
      started.push(n1);
      try {
        const ids: string[] = [];
        for (let i = 0; i < 6; i++) ids.push((await post(`${gateway.url}/runs`, { graph: 'research-swarm', input: { topic: `nats down ${i}` } })).id);
        // Mid-run: several are running on n1, none has finished.
        const end = Date.now() + 60_000;
        for (;;) {
          const running = (await json<{ runs: unknown[] }>(`${gateway.url}/runs?status=running&limit=100`)).runs.length;
          if (running >= 3) break;
          if (Date.now() > end) throw new Error(`only ${running} runs running after 60 s`);
          await new Promise((r) => setTimeout(r, 50));
        }
        await nats.stop();
        // Let the node notice: its publishes and pulls now fail and retry.
        await new Promise((r) => setTimeout(r, 500));
        const t0 = Date.now();
        n1.proc.kill('SIGTERM');
        await n1.exited(EXIT_BOUND_MS).catch((e: unknown) => {
          throw new Error(`${(e as Error).message}; log:\n${n1.log().slice(-3000)}`);
        });
        const exitMs = Date.now() - t0;
        console.log(`[shutdown-nats-down] n1 exited ${exitMs} ms after SIGTERM with NATS down (code ${n1.proc.exitCode}, signal ${n1.proc.signalCode})`);
        expect(exitMs).toBeLessThan(EXIT_BOUND_MS);
        expect(n1.proc.exitCode).toBe(0);

        // NATS back, a fresh node: it takes the runs over and finishes them from their logs.
        await nats.start();
        const n2 = await startNodeProcess({ ...env, AO_NODE_ID: 'n2' });
        started.push(n2);
        try {
          const finished = await waitAll(gateway.url, ids, 120_000);
          expect(
            [...finished.values()].map((r) => (r.status === 'succeeded' ? r.status : `${r.status}: ${JSON.stringify((r as { error?: unknown }).error)}`)),
          ).toEqual(ids.map(() => 'succeeded'));
          for (const id of ids) expectWholeLog((await json<{ events: Env[] }>(`${gateway.url}/runs/${id}/events?limit=1000`)).events, `run ${id}`);
        } catch (e) {
          console.error(`--- n2 log (tail) ---\n${n2.log().slice(-3000)}`);
          throw e;
        }
      } catch (e) {
        console.error(`--- n1 log (tail) ---\n${n1.log().slice(-3000)}`);
        throw e;
      }
    } finally {
      // Every process this test started, whatever happened: nodes first, then the gateway.
      for (const p of started.reverse()) await p.kill9().catch(() => undefined);
      await nats.stop();
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 240_000);
});
