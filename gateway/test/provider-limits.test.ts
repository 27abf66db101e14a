import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graph } from '@ao/graphs';
import { loadConfig } from '@ao/runtime';
import type { Envelope } from '@ao/runtime';
import { FakeProvider } from '@ao/runtime/fake-llm';
import type { FakeLimits } from '@ao/runtime/fake-llm';
import { createTestDatabase, postgresAvailable } from '@ao/runtime/testing';
import { startRuntime } from '../src/mod.js';
import type { Runtime } from '../src/mod.js';

/**
 * Provider limits shared by the cluster: several runtimes (each its own engine, host and store
 * pool, standing for nodes) on one Postgres call one provider key through a profile with limits.
 * The fake provider enforces its limits with 429s; the runs must never meet one. Counts only:
 * nothing here asserts a duration.
 */

const pgUp = await postgresAvailable();

/** One LLM call a run. */
const oneCall = graph('one-call').node('answer', { agent: 'pipeline', instructions: 'Answer in one line.' }).budget({ tokens: 100_000 });

/** The provider's limits, and ours a little inside them (a smaller burst: requests arrive with some jitter). */
const PROVIDER: FakeLimits = { requestsPerMinute: 600, outputTokensPerMinute: 60_000, concurrent: 6, burstSeconds: 3 };
const profile = (fakeUrl: string, limits: Record<string, unknown>) => ({
  default: { provider: 'openai', baseUrl: `${fakeUrl}/v1`, model: 'limited', apiKey: 'k', maxTokens: 50, limits },
});

async function cluster(n: number, dbUrl: string, profiles: unknown): Promise<{ rts: Runtime[]; close(): Promise<void> }> {
  const dirs: string[] = [];
  const rts: Runtime[] = [];
  for (let i = 0; i < n; i++) {
    const dir = await mkdtemp(join(tmpdir(), 'ao-limits-'));
    dirs.push(dir);
    rts.push(
      await startRuntime(loadConfig({ AO_DATA_DIR: dir, AO_NODE_ID: `limits-n${i + 1}`, DATABASE_URL: dbUrl, AO_LLM_PROFILES: JSON.stringify(profiles) }), {
        graphs: [oneCall],
      }),
    );
  }
  return {
    rts,
    close: async () => {
      for (const rt of rts) await rt.close();
      for (const d of dirs) await rm(d, { recursive: true, force: true });
    },
  };
}

const logOf = (rt: Runtime, id: string): Promise<Envelope[]> => rt.engine.listEvents(id, { limit: 10_000 });

describe.skipIf(!pgUp)('provider limits shared by several nodes on one Postgres', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(() => db?.drop());

  it('3 nodes x 30 concurrent runs against a provider that answers 429 past its limits: no 429, every run succeeds, waits are journaled and replay', async () => {
    const fake = await FakeProvider.start(() => ({ text: 'ok', usage: { input: 20, output: 10 }, delayMs: 20 }), { limits: PROVIDER });
    const c = await cluster(
      3,
      db.url,
      profile(fake.url, { requestsPerMinute: 600, outputTokensPerMinute: 60_000, concurrentCalls: 6, burstSeconds: 1, maxWaitMs: 120_000 }),
    );
    try {
      const started = await Promise.all(
        c.rts.flatMap((rt, n) =>
          Array.from({ length: 30 }, (_, i) => rt.engine.startRun({ graph: 'one-call', input: { q: `n${n} run ${i}` } }).then((r) => ({ rt, id: r.id }))),
        ),
      );
      const done = await Promise.all(started.map(({ rt, id }) => rt.engine.waitForRun(id, 120_000)));
      expect(done.filter((r) => r.status !== 'succeeded').map((r) => [r.id, r.status, r.error])).toEqual([]);
      // The provider admitted every request and refused none.
      expect(fake.limiter!.limited).toBe(0);
      expect(fake.limiter!.admitted).toBe(90);
      expect(fake.requests).toHaveLength(90);
      // 90 calls at once against a burst of 10 and 6 at a time: most waited, and their logs say so.
      const logs = await Promise.all(started.map(({ rt, id }) => logOf(rt, id)));
      const throttled = logs.flatMap((l) => l.filter((e) => e.type === 'llm.throttled'));
      expect(throttled.length).toBeGreaterThan(0);
      expect(throttled.every((e) => e.from === 'llm/default' && (e.payload as { profile: string }).profile === 'default')).toBe(true);
      // A throttled run replays recorded from step 0: no limiter, no call, the same decisions.
      const i = logs.findIndex((l) => l.some((e) => e.type === 'llm.throttled'));
      const { rt, id } = started[i]!;
      const replay = await rt.engine.replay(id, { fromStep: 0, mode: 'recorded' });
      const replayed = await rt.engine.waitForRun(replay.id, 30_000);
      expect(replayed.status).toBe('succeeded');
      expect(replayed.replay?.divergence ?? null).toBeNull();
      expect((await rt.engine.diff(id, replay.id)).identical).toBe(true);
      expect(fake.requests).toHaveLength(90);
      expect((await logOf(rt, replay.id)).some((e) => e.type === 'llm.throttled')).toBe(false);
    } finally {
      await c.close();
      await fake.close();
    }
  }, 180_000);

  it('tenant fairness: a tenant flooding the profile gets its share; another tenant arriving after is not queued behind it', async () => {
    const fake = await FakeProvider.start(() => ({ text: 'ok', usage: { input: 20, output: 10 }, delayMs: 5 }), { limits: PROVIDER });
    // A share of one half each: 5 a second with a burst of 5 for each tenant, 10 and 10 for the profile.
    const c = await cluster(2, db.url, profile(fake.url, { requestsPerMinute: 600, burstSeconds: 1, tenantShare: 0.5, maxWaitMs: 120_000 }));
    try {
      const a = await Promise.all(
        Array.from({ length: 40 }, (_, i) => c.rts[i % 2]!.engine.startRun({ graph: 'one-call', tenant: 'flood', input: { q: `tenant-A ${i}` } })),
      );
      const b = await Promise.all(
        Array.from({ length: 10 }, (_, i) => c.rts[i % 2]!.engine.startRun({ graph: 'one-call', tenant: 'calm', input: { q: `tenant-B ${i}` } })),
      );
      const done = await Promise.all([...a, ...b].map((r, i) => c.rts[i % 2]!.engine.waitForRun(r.id, 120_000)));
      expect(done.filter((r) => r.status !== 'succeeded')).toEqual([]);
      expect(fake.limiter!.limited).toBe(0);
      // In the order the provider received them, B's 10 calls come early although B asked last:
      // A's backlog waits on A's own share. Without shares B's would be the last 10 of 50.
      const order = fake.requests.map((r) => (JSON.stringify(r.body).includes('tenant-B') ? 'B' : 'A'));
      expect(order.filter((t) => t === 'B')).toHaveLength(10);
      const lastB = order.lastIndexOf('B');
      expect(lastB, order.join('')).toBeLessThan(30);
      // A's waits are on its share; no call of B waited on the profile's own limit behind A's queue.
      const logs = await Promise.all([...a, ...b].map((r, i) => logOf(c.rts[i % 2]!, r.id)));
      const scopes = logs.slice(0, 40).flatMap((l) => l.filter((e) => e.type === 'llm.throttled').map((e) => (e.payload as { scope: string }).scope));
      expect(scopes).toContain('tenant');
    } finally {
      await c.close();
      await fake.close();
    }
  }, 180_000);
});
