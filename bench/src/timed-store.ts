import { performance } from 'node:perf_hooks';
import type { Store } from '@ao/runtime';

/**
 * Wall times (ms) of the store commits made while `recording`, split by whether the batch carried
 * a checkpoint (the run supervisor's step commits) or not (agents' and tools' event appends).
 */
export class CommitTimes {
  recording = false;
  readonly withCheckpoint: number[] = [];
  readonly withoutCheckpoint: number[] = [];
  /** Commits that threw, recording or not (they are not timed). */
  failed = 0;

  /** Drop the recorded times and stop recording (`failed` keeps counting). */
  reset(): void {
    this.recording = false;
    this.withCheckpoint.length = 0;
    this.withoutCheckpoint.length = 0;
  }
}

/**
 * `store` with its `commit` timed into `times`: from the call to the settled promise, so a commit
 * queued behind another statement (PGlite runs one at a time) counts its wait. Every other member
 * is the store's own, bound to it. Runtime code is untouched: the engine is simply given this
 * store instead of the raw one.
 *
 * @example
 * const times = new CommitTimes();
 * const engine = await Engine.create({ store: timeCommits(store, times), ... });
 * times.recording = true; // ... run the workload ...; times.recording = false
 */
export function timeCommits(store: Store, times: CommitTimes): Store {
  const commit: Store['commit'] = async (batch) => {
    const recording = times.recording;
    const t0 = performance.now();
    try {
      await store.commit(batch);
    } catch (e) {
      times.failed++;
      throw e;
    }
    if (recording) (batch.checkpoint ? times.withCheckpoint : times.withoutCheckpoint).push(performance.now() - t0);
  };
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'commit') return commit;
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
