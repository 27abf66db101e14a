import type { Clock } from '../../clock/mod.js';
import type { BucketState } from './bucket.js';

/** What one atomic update of bucket rows computes: the rows to write and what the caller gets. */
export interface BucketUpdate<T> {
  readonly next: ReadonlyMap<string, BucketState>;
  readonly out: T;
}

/**
 * Where the limits' bucket rows live: one atomic read-modify-write over a few rows, timed by the
 * table's own clock (in a cluster, the database's: one clock for every node). Adapters: in
 * process ({@link MemoryBucketTable}, the embedded default) and Postgres (the store's
 * `llm_buckets` table, see `DrizzleStore.updateBuckets`).
 */
export interface BucketTable {
  /**
   * Lock the rows of `keys` (absent rows are undefined), give them and the time to `fn`, write the
   * rows it returns, and resolve with its `out`. `fn` is pure: it may run again.
   */
  updateBuckets<T>(keys: readonly string[], fn: (states: ReadonlyMap<string, BucketState>, now: number) => BucketUpdate<T>): Promise<T>;
}

/** The in-process table: exact for one process (the embedded node owns its data dir alone). */
export class MemoryBucketTable implements BucketTable {
  private readonly rows = new Map<string, BucketState>();

  constructor(private readonly clock: Clock) {}

  updateBuckets<T>(keys: readonly string[], fn: (states: ReadonlyMap<string, BucketState>, now: number) => BucketUpdate<T>): Promise<T> {
    const states = new Map<string, BucketState>();
    for (const k of keys) {
      const s = this.rows.get(k);
      if (s) states.set(k, s);
    }
    // Synchronous from read to write: nothing else runs in between.
    const { next, out } = fn(states, this.clock.now());
    for (const [k, s] of next) this.rows.set(k, s);
    return Promise.resolve(out);
  }
}
