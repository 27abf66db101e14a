/**
 * A provider's rate limits as the fake server enforces them, written apart from the runtime's
 * limiter so that it judges it: a bucket per dimension (capacity = `burstSeconds` of the rate,
 * refilled continuously), charged when a request is admitted with what the answer will report,
 * and a count of requests in flight. A request that does not fit is answered 429 with the wait
 * in `retry-after-ms`.
 */
export interface FakeLimits {
  requestsPerMinute?: number;
  inputTokensPerMinute?: number;
  outputTokensPerMinute?: number;
  concurrent?: number;
  /** Seconds of each rate a bucket holds (its burst); 1 unless said. */
  burstSeconds?: number;
}

interface Bucket {
  level: number;
  at: number;
  capacity: number;
  perMs: number;
}

export class FakeLimiter {
  private readonly buckets: Partial<Record<'requests' | 'input' | 'output', Bucket>> = {};
  inFlight = 0;
  /** Requests admitted, and answered 429. */
  admitted = 0;
  limited = 0;
  /** 429s by the limit that refused (the first that did not fit). */
  readonly limitedBy: Record<string, number> = {};
  /** Times (epoch ms) requests were admitted. */
  readonly times: number[] = [];

  constructor(readonly limits: FakeLimits) {
    const burst = limits.burstSeconds ?? 1;
    const make = (perMinute: number | undefined): Bucket | undefined => {
      if (perMinute === undefined) return undefined;
      const perMs = perMinute / 60_000;
      const capacity = Math.max(1, perMs * burst * 1000);
      return { level: capacity, at: Date.now(), capacity, perMs };
    };
    const r = make(limits.requestsPerMinute);
    const i = make(limits.inputTokensPerMinute);
    const o = make(limits.outputTokensPerMinute);
    if (r) this.buckets.requests = r;
    if (i) this.buckets.input = i;
    if (o) this.buckets.output = o;
  }

  /** Admit a request that will report these tokens, or say how long to wait. */
  admit(tokens: { input: number; output: number }, now = Date.now()): { ok: true } | { ok: false; retryAfterMs: number } {
    const asks = { requests: 1, input: tokens.input, output: tokens.output };
    let wait = 0;
    let by = '';
    for (const [k, b] of Object.entries(this.buckets) as Array<[keyof typeof asks, Bucket]>) {
      b.level = Math.min(b.capacity, b.level + (now - b.at) * b.perMs);
      b.at = now;
      const need = Math.min(asks[k], b.capacity);
      if (b.level < need) {
        wait = Math.max(wait, (need - b.level) / b.perMs);
        by ||= k;
      }
    }
    if (this.limits.concurrent !== undefined && this.inFlight >= this.limits.concurrent) {
      wait = Math.max(wait, 50);
      by ||= 'concurrent';
    }
    if (wait > 0) {
      this.limited += 1;
      this.limitedBy[by] = (this.limitedBy[by] ?? 0) + 1;
      return { ok: false, retryAfterMs: Math.ceil(wait) };
    }
    for (const [k, b] of Object.entries(this.buckets) as Array<[keyof typeof asks, Bucket]>) b.level -= asks[k];
    this.inFlight += 1;
    this.admitted += 1;
    this.times.push(now);
    return { ok: true };
  }

  /** What a bench reads: counts and admission times. */
  stats(): { admitted: number; limited: number; limitedBy: Record<string, number>; times: number[] } {
    return { admitted: this.admitted, limited: this.limited, limitedBy: this.limitedBy, times: this.times };
  }

  /** An admitted request was answered (or its connection closed). */
  done(): void {
    this.inFlight -= 1;
  }
}
