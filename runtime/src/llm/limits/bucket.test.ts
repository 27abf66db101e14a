import { describe, expect, it } from 'vitest';
import { adjust, hold, levelAt, reserve, unhold } from './bucket.js';
import type { Ask, BucketLimits, BucketState } from './bucket.js';
import { bucketLimits, LlmLimitsSchema } from './config.js';

const ask = (requests = 1, inputTokens = 0, outputTokens = 0): Ask => ({ requests, inputTokens, outputTokens });
/** 60 requests a minute (one a second), a burst of 2. */
const perSecond: BucketLimits = { requests: { capacity: 2, perMs: 1 / 1000 } };

/** Reserve `n` calls at `now`, each on the state the one before left. */
function many(limits: BucketLimits, n: number, now: number, maxWaitMs = 1e9, start?: BucketState): { waits: number[]; state: BucketState | undefined } {
  let state = start;
  const waits: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = reserve(state, limits, ask(), now, maxWaitMs);
    if (!r.ok) throw new Error(`refused at ${i}`);
    waits.push(r.waitMs);
    state = r.state;
  }
  return { waits, state };
}

describe('bucket math', () => {
  it('an untouched bucket is full', () => {
    expect(levelAt(undefined, 'requests', perSecond.requests!, 0)).toBe(2);
  });

  it('a burst passes at once, then calls are spaced at the rate, in order', () => {
    const { waits } = many(perSecond, 6, 10_000);
    expect(waits).toEqual([0, 0, 1000, 2000, 3000, 4000]);
  });

  it('never admits more than capacity + rate x time, whatever the arrival times', () => {
    // 200 calls arriving over 10 s at random: their start times are what the provider sees.
    let state: BucketState | undefined;
    const starts: number[] = [];
    let now = 0;
    for (let i = 0; i < 200; i++) {
      now += Math.random() * 50;
      const r = reserve(state, perSecond, ask(), now, 1e9);
      if (!r.ok) throw new Error('refused');
      state = r.state;
      starts.push(now + r.waitMs);
    }
    const first = starts[0]!;
    starts.sort((a, b) => a - b);
    // In any window [s_i, s_j], at most capacity + rate x (s_j - s_i) calls start.
    for (let i = 0; i < starts.length; i++) {
      for (let j = i; j < starts.length; j++) expect(j - i + 1).toBeLessThanOrEqual(2 + (starts[j]! - starts[i]!) / 1000 + 1e-9);
    }
    // And the rate is met, not undershot: after the burst of 2, one a second (the second arrival
    // comes up to 50 ms after the first, which refills a little).
    expect(starts.at(-1)).toBeGreaterThan(first + 198_000 - 50);
    expect(starts.at(-1)).toBeLessThanOrEqual(first + 198_000 + 1);
  });

  it('a call whose wait passes the bound is refused and takes nothing', () => {
    const { state } = many(perSecond, 4, 0);
    const r = reserve(state, perSecond, ask(), 0, 2500);
    expect(r).toMatchObject({ ok: false, limit: 'requests', waitMs: 3000 });
    // The same call with a longer bound is given the 3 s wait: nothing was taken by the refusal.
    expect(reserve(state, perSecond, ask(), 0, 3000)).toMatchObject({ ok: true, waitMs: 3000 });
  });

  it('the dimension with the longest wait decides and is named', () => {
    const limits: BucketLimits = { requests: { capacity: 10, perMs: 10 / 1000 }, outputTokens: { capacity: 100, perMs: 100 / 1000 } };
    const a = reserve(undefined, limits, ask(1, 0, 100), 0, 1e9);
    expect(a).toMatchObject({ ok: true, waitMs: 0 });
    const b = reserve(a.ok ? a.state : undefined, limits, ask(1, 0, 50), 0, 1e9);
    expect(b).toMatchObject({ ok: true, waitMs: 500, limit: 'outputTokens' });
  });

  it('an ask above the capacity waits for a full bucket, then goes into debt', () => {
    const limits: BucketLimits = { inputTokens: { capacity: 100, perMs: 0.1 } };
    const a = reserve(undefined, limits, ask(1, 300, 0), 0, 1e9);
    expect(a).toMatchObject({ ok: true, waitMs: 0 });
    const b = reserve(a.ok ? a.state : undefined, limits, ask(1, 10, 0), 0, 1e9);
    // Debt of 200 repaid, then 10 more: (200 + 10) / 0.1 ms.
    expect(b.waitMs).toBeCloseTo(2100, 6);
  });

  it('settling hands back what a reservation over-estimated, capped at the capacity', () => {
    const limits: BucketLimits = { outputTokens: { capacity: 1000, perMs: 1 } };
    const r = reserve(undefined, limits, ask(1, 0, 1000), 0, 1e9);
    const after = adjust(r.ok ? r.state : undefined, limits, { outputTokens: 1000 - 40 }, 0)!;
    expect(levelAt(after, 'outputTokens', limits.outputTokens!, 0)).toBe(960);
    const under = adjust(after, limits, { outputTokens: -500 }, 0)!;
    expect(levelAt(under, 'outputTokens', limits.outputTokens!, 0)).toBe(460);
    expect(levelAt(adjust(after, limits, { outputTokens: 5000 }, 0), 'outputTokens', limits.outputTokens!, 0)).toBe(1000);
  });

  it('concurrency: slots up to the limit, freed by release or by expiry', () => {
    const limits: BucketLimits = { concurrent: 2 };
    let s: BucketState | undefined;
    for (const id of ['a', 'b']) {
      const h = hold(s, limits, id, 0, 1000);
      expect(h.ok).toBe(true);
      s = h.state;
    }
    expect(hold(s, limits, 'c', 0, 1000).ok).toBe(false);
    // Holding again under the same id is no second slot.
    expect(hold(s, limits, 'a', 0, 1000).ok).toBe(true);
    expect(hold(unhold(s, 'a', 0), limits, 'c', 0, 1000).ok).toBe(true);
    // A holder that never released (its node died) frees its slot when it expires.
    expect(hold(s, limits, 'c', 1000, 2000).ok).toBe(true);
  });

  it('a tenant share scales every rate and the concurrency', () => {
    const l = LlmLimitsSchema.parse({ requestsPerMinute: 600, outputTokensPerMinute: 60_000, concurrentCalls: 9, tenantShare: 0.5, burstSeconds: 2 });
    expect(bucketLimits(l)).toEqual({ requests: { capacity: 20, perMs: 0.01 }, outputTokens: { capacity: 2000, perMs: 1 }, concurrent: 9 });
    expect(bucketLimits(l, l.tenantShare)).toEqual({ requests: { capacity: 10, perMs: 0.005 }, outputTokens: { capacity: 1000, perMs: 0.5 }, concurrent: 4 });
  });

  it('limits config: defaults, and at least one limit', () => {
    expect(LlmLimitsSchema.parse({ requestsPerMinute: 60 })).toMatchObject({ tenantShare: 1, burstSeconds: 1, maxWaitMs: 60_000 });
    expect(LlmLimitsSchema.safeParse({}).success).toBe(false);
    expect(LlmLimitsSchema.safeParse({ requestsPerMinute: 60, tenantShare: 0 }).success).toBe(false);
    expect(LlmLimitsSchema.safeParse({ requestsPerMinute: 60, rpm: 3 }).success).toBe(false);
  });
});
