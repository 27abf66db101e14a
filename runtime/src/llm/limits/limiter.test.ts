import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAoError } from '@ao/graphs';
import { SimulatedClock, systemClock } from '../../clock/mod.js';
import { openPgliteStore } from '../../store/pglite/pglite-store.js';
import { openPgStore } from '../../store/pg/pg-store.js';
import { createTestDatabase, postgresAvailable } from '../../testing/postgres.js';
import { LlmLimitsSchema } from './config.js';
import { ProfileLimiter } from './limiter.js';
import { MemoryBucketTable } from './table.js';
import type { BucketTable } from './table.js';
import type { ThrottleInfo } from './limiter.js';

const ask = { requests: 1, inputTokens: 10, outputTokens: 10 };
/** Let the waiting calls reach their sleep (a few hops of promises). */
const settled = () => new Promise((r) => setImmediate(r));

/**
 * The same counts from every bucket table: the in-process one, PGlite's and Postgres's (two
 * stores on one database standing for two nodes). Counts only: nothing here depends on speed.
 */
function tableConformance(name: string, open: () => Promise<{ tables: BucketTable[]; close: () => Promise<void> }>, skip = () => false): void {
  describe.skipIf(skip())(`bucket table: ${name}`, () => {
    let tables: BucketTable[] = [];
    let close = async () => {};
    beforeAll(async () => {
      ({ tables, close } = await open());
    });
    afterAll(() => close());
    const limiters = (profile: string, limits: unknown) => tables.map((t) => new ProfileLimiter(t, profile, LlmLimitsSchema.parse(limits), systemClock));

    it('of 40 calls at once over every table, exactly the burst passes without waiting', async () => {
      // 6 a minute with a 50 s burst: 5 fit now, the next only in 10 s, past the bound (0).
      const ls = limiters('burst', { requestsPerMinute: 6, burstSeconds: 50, maxWaitMs: 0 });
      const results = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => ls[i % ls.length]!.acquire({ tenant: 't', id: `c${i}`, ask })));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
      const refusals = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
      expect(refusals.every((e) => isAoError(e) && e.code === 'AO_LLM_RATE_LIMITED' && e.retryable)).toBe(true);
    });

    it('never more calls in flight than the concurrency limit, and every call gets through', async () => {
      const ls = limiters('conc', { concurrentCalls: 3, maxWaitMs: 60_000 });
      let inFlight = 0;
      let most = 0;
      await Promise.all(
        Array.from({ length: 24 }, async (_, i) => {
          const p = await ls[i % ls.length]!.acquire({ tenant: 't', id: `c${i}`, ask });
          inFlight += 1;
          most = Math.max(most, inFlight);
          await new Promise((r) => setTimeout(r, 2));
          inFlight -= 1;
          await p.settle({ inputTokens: 10, outputTokens: 10 });
        }),
      );
      expect(most).toBeLessThanOrEqual(3);
      expect(most).toBeGreaterThan(0);
    });

    it('a tenant at its share waits on its own bucket; another tenant still passes at once', async () => {
      const ls = limiters('share', { requestsPerMinute: 6, burstSeconds: 50, tenantShare: 0.4, maxWaitMs: 0 });
      // A's share: 2 of the 5.
      const a = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => ls[i % ls.length]!.acquire({ tenant: 'A', id: `a${i}`, ask })));
      expect(a.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
      const b = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => ls[i % ls.length]!.acquire({ tenant: 'B', id: `b${i}`, ask })));
      expect(b.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
      const c = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => ls[i % ls.length]!.acquire({ tenant: 'C', id: `c${i}`, ask })));
      // What is left of the profile's 5.
      expect(c.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    });
  });
}

tableConformance('in process', async () => {
  const t = new MemoryBucketTable(systemClock);
  return { tables: [t], close: async () => {} };
});

tableConformance('pglite', async () => {
  const s = await openPgliteStore();
  return { tables: [s], close: () => s.close() };
});

const pgUp = await postgresAvailable();
tableConformance(
  'postgres, two stores',
  async () => {
    const db = await createTestDatabase();
    const a = await openPgStore({ url: db.url });
    const b = await openPgStore({ url: db.url });
    return { tables: [a, b], close: async () => (await a.close(), await b.close(), await db.drop()) };
  },
  () => !pgUp,
);

describe('waiting for capacity (simulated clock)', () => {
  it('a call over the rate waits its turn, says so once, and settles what it over-reserved', async () => {
    const clock = new SimulatedClock(1_000_000);
    const table = new MemoryBucketTable(clock);
    const l = new ProfileLimiter(table, 'p', LlmLimitsSchema.parse({ requestsPerMinute: 600, outputTokensPerMinute: 6000 }), clock);
    const told: ThrottleInfo[] = [];
    const first = await l.acquire({ tenant: 't', id: '1', ask: { requests: 1, inputTokens: 0, outputTokens: 100 } });
    expect(first.waitedMs).toBe(0);
    let second: Awaited<ReturnType<typeof l.acquire>> | undefined;
    const pending = l
      .acquire({ tenant: 't', id: '2', ask: { requests: 1, inputTokens: 0, outputTokens: 100 }, onThrottled: (t) => void told.push(t) })
      .then((p) => (second = p));
    await settled();
    expect(told).toEqual([{ profile: 'p', tenant: 't', limit: 'outputTokens', scope: 'profile', waitMs: 1000 }]);
    await clock.advance(999);
    expect(second).toBeUndefined();
    await clock.advance(1);
    await pending;
    expect(second!.waitedMs).toBe(1000);
    // It used 10 of its 100: 90 go back, so a third call of 90 fits at once.
    await second!.settle({ inputTokens: 0, outputTokens: 10 });
    const third = await l.acquire({ tenant: 't', id: '3', ask: { requests: 0, inputTokens: 0, outputTokens: 90 } });
    expect(third.waitedMs).toBe(0);
  });

  it('an abort ends the wait and gives back what it reserved', async () => {
    const clock = new SimulatedClock(0);
    const l = new ProfileLimiter(new MemoryBucketTable(clock), 'p', LlmLimitsSchema.parse({ requestsPerMinute: 60 }), clock);
    await l.acquire({ tenant: 't', id: '1', ask });
    const ac = new AbortController();
    const waiting = l.acquire({ tenant: 't', id: '2', ask, signal: ac.signal });
    await settled();
    await clock.advance(10);
    ac.abort(new Error('cancelled'));
    await expect(waiting).rejects.toThrow('cancelled');
    // The aborted call's reservation went back: the next one waits only for the first's refill.
    const told: ThrottleInfo[] = [];
    void l.acquire({ tenant: 't', id: '3', ask, onThrottled: (t) => void told.push(t) });
    await settled();
    expect(told[0]!.waitMs).toBe(990);
  });
});
