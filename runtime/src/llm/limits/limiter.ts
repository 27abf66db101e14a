import { AoError } from '@ao/graphs';
import type { Clock } from '../../clock/mod.js';
import { adjust, hold, reserve, unhold } from './bucket.js';
import type { Ask, BucketLimits, BucketState, LimitName } from './bucket.js';
import { bucketLimits } from './config.js';
import type { LlmLimits } from './config.js';
import type { BucketTable } from './table.js';

/** A call waits for capacity: which limit, whose (the profile's or the tenant's share), and for about how long. */
export interface ThrottleInfo {
  readonly profile: string;
  readonly tenant: string;
  readonly limit: LimitName;
  /** `provider`: the provider answered 429 all the same (another client on the key); the call retries after its Retry-After. */
  readonly scope: 'profile' | 'tenant' | 'provider';
  /** The wait planned when it began (for `concurrent`, the first poll's). */
  readonly waitMs: number;
}

/** A call's capacity, held until it is settled with what the call used (or undefined: it failed). */
export interface Permit {
  /** How long the call waited for its capacity. */
  readonly waitedMs: number;
  settle(used: { inputTokens: number; outputTokens: number } | undefined): Promise<void>;
}

interface Stage {
  key: string;
  scope: 'profile' | 'tenant';
  limits: BucketLimits;
}

/** Polls of a full concurrency set: from this, doubling, up to `MAX_POLL_MS` (with jitter). */
const FIRST_POLL_MS = 25;
const MAX_POLL_MS = 1_000;
/** Turns taken again by a call woken too late for its own. */
const MAX_LATE_RETRIES = 1;

/**
 * One profile's limits over a bucket table. A call first reserves its tenant's share (when the
 * share is below 1) and waits for it, then the profile's: a tenant over its share waits on its
 * own bucket and takes nothing of the profile's meanwhile, so other tenants' calls are not pushed
 * back by its queue. Then a concurrency slot in both. The whole wait is bounded by `maxWaitMs`.
 */
export class ProfileLimiter {
  private readonly profileLimits: BucketLimits;
  private readonly tenantLimits: BucketLimits | undefined;

  constructor(
    private readonly table: BucketTable,
    readonly profile: string,
    readonly limits: LlmLimits,
    private readonly clock: Clock,
  ) {
    this.profileLimits = bucketLimits(limits);
    this.tenantLimits = limits.tenantShare < 1 ? bucketLimits(limits, limits.tenantShare) : undefined;
    this.lateMs = limits.burstSeconds * 1000;
  }

  /** How late after its turn a call may still go: the burst, so late calls add up to at most one more burst. */
  private readonly lateMs: number;

  /** The output tokens reserved for a call asking `maxTokens`. */
  expectedOutput(maxTokens: number): number {
    return Math.min(maxTokens, this.limits.expectedOutputTokens ?? maxTokens);
  }

  /**
   * Wait for capacity for one call. `onThrottled` hears of the first wait (once per call).
   * @throws AoError `AO_LLM_RATE_LIMITED` (retryable) when the wait would pass `maxWaitMs`; the
   * signal's reason when it aborts.
   */
  async acquire(c: {
    tenant: string;
    id: string;
    ask: Ask;
    signal?: AbortSignal | undefined;
    onThrottled?: ((t: ThrottleInfo) => void | Promise<void>) | undefined;
  }): Promise<Permit> {
    const started = this.clock.now();
    const deadline = started + this.limits.maxWaitMs;
    const stages: Stage[] = [
      ...(this.tenantLimits ? [{ key: `${this.profile}/tenant/${c.tenant}`, scope: 'tenant' as const, limits: this.tenantLimits }] : []),
      { key: this.profile, scope: 'profile', limits: this.profileLimits },
    ];
    let told = false;
    const tell = async (limit: LimitName, scope: Stage['scope'], waitMs: number) => {
      if (told) return;
      told = true;
      await c.onThrottled?.({ profile: this.profile, tenant: c.tenant, limit, scope, waitMs: Math.ceil(waitMs) });
    };
    const charged: Stage[] = [];
    try {
      for (const st of stages) {
        if (!st.limits.requests && !st.limits.inputTokens && !st.limits.outputTokens) continue;
        for (let late = 0; ; late++) {
          const bound = Math.max(0, deadline - this.clock.now());
          const r = await this.table.updateBuckets([st.key], (rows, now) => {
            const res = reserve(rows.get(st.key), st.limits, c.ask, now, bound);
            return {
              next: res.ok ? new Map([[st.key, res.state]]) : new Map(),
              out: res.ok ? { ok: true as const, waitMs: res.waitMs, limit: res.limit } : res,
            };
          });
          if (!r.ok) throw this.refused(c.tenant, r.limit, st.scope, r.waitMs);
          if (late === 0) charged.push(st);
          if (r.waitMs === 0) break;
          await tell(r.limit ?? 'requests', st.scope, r.waitMs);
          // Lateness is what the sleep overran by: the time the update took (waiting for the row's
          // lock, under a rush) is already in the wait the table's clock gave.
          const due = this.clock.now() + r.waitMs;
          await this.clock.sleep(r.waitMs, c.signal);
          // Woken well after its turn (a stalled event loop): calls late together would reach the
          // provider as one burst. Take a new turn instead (the missed one stays spent: handing it
          // back now would make the very burst). At most once, then go.
          if (this.clock.now() - due <= this.lateMs || late >= MAX_LATE_RETRIES) break;
        }
      }
      if (this.profileLimits.concurrent !== undefined) await this.slot(c, stages, deadline, tell);
    } catch (e) {
      // Given up: the tokens reserved go back (a slot was not taken).
      if (charged.length) await this.release(charged, c.id, c.ask).catch(() => undefined);
      throw e;
    }
    const waitedMs = this.clock.now() - started;
    return {
      waitedMs,
      settle: (used) => {
        const back: Partial<Ask> = used ? { inputTokens: c.ask.inputTokens - used.inputTokens, outputTokens: c.ask.outputTokens - used.outputTokens } : {};
        return this.release(stages, c.id, back);
      },
    };
  }

  /** A concurrency slot in every stage at once, polled while they are full. */
  private async slot(
    c: { id: string; signal?: AbortSignal | undefined; tenant: string },
    stages: Stage[],
    deadline: number,
    tell: (l: LimitName, s: Stage['scope'], w: number) => Promise<void>,
  ): Promise<void> {
    const expires = this.limits.holdMs;
    for (let n = 0; ; n++) {
      const full = await this.table.updateBuckets(
        stages.map((s) => s.key),
        (rows, now) => {
          const next = new Map<string, BucketState>();
          for (const st of stages) {
            const h = hold(rows.get(st.key), st.limits, c.id, now, now + expires);
            if (!h.ok) return { next: new Map(), out: st.scope };
            next.set(st.key, h.state);
          }
          return { next, out: undefined };
        },
      );
      if (full === undefined) return;
      const pause = Math.min(MAX_POLL_MS, FIRST_POLL_MS * 2 ** n) * (0.5 + Math.random() / 2);
      if (this.clock.now() + pause > deadline) throw this.refused(c.tenant, 'concurrent', full, this.limits.maxWaitMs);
      await tell('concurrent', full, pause);
      await this.clock.sleep(pause, c.signal);
    }
  }

  /** Free the call's slot and hand back (or charge) the tokens its reservation got wrong. */
  private release(stages: Stage[], id: string, back: Partial<Ask>): Promise<void> {
    return this.table.updateBuckets(
      stages.map((s) => s.key),
      (rows, now) => {
        const next = new Map<string, BucketState>();
        for (const st of stages) {
          const s = unhold(adjust(rows.get(st.key), st.limits, back, now), id, now);
          if (s) next.set(st.key, s);
        }
        return { next, out: undefined };
      },
    );
  }

  private refused(tenant: string, limit: LimitName, scope: Stage['scope'], waitMs: number): AoError {
    return new AoError(
      'AO_LLM_RATE_LIMITED',
      `LLM profile "${this.profile}": no capacity under its ${limit} limit (${scope}) within ${this.limits.maxWaitMs} ms`,
      {
        details: { profile: this.profile, tenant, limit, scope, waitMs: Math.ceil(waitMs), maxWaitMs: this.limits.maxWaitMs },
        retryable: true,
      },
    );
  }
}
