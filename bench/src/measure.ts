/**
 * The `p`-th percentile (0..100) of `values` by the nearest-rank method: the smallest value such
 * that at least p% of the values are at or below it. NaN for no values.
 *
 * @example
 * percentile([5, 1, 4, 2, 3], 50); // 3
 */
export function percentile(values: readonly number[], p: number): number {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100, got ${p}`);
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  return values.reduce((s, v) => s + v, 0) / values.length;
}

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  mean: number;
  min: number;
  max: number;
}

export function summarize(values: readonly number[]): Summary {
  return {
    n: values.length,
    p50: percentile(values, 50),
    p99: percentile(values, 99),
    mean: mean(values),
    min: values.length ? Math.min(...values) : Number.NaN,
    max: values.length ? Math.max(...values) : Number.NaN,
  };
}

export const MiB = 1024 * 1024;

/**
 * Samples the process's resident set size every `intervalMs` while running; `stop()` returns the
 * peak in bytes. RSS covers everything in the process (V8 heap, PGlite's WASM memory, buffers).
 */
export class RssSampler {
  private peak = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs = 50) {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
    // The sampler must never be what keeps the process alive.
    this.timer.unref();
  }

  private sample(): void {
    const rss = process.memoryUsage.rss();
    if (rss > this.peak) this.peak = rss;
  }

  /** Stop sampling; the peak RSS seen, in bytes. */
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return this.peak;
  }
}
