import { describe, it, expect } from 'vitest';
import type { Store } from '@ao/runtime';
import { CommitTimes, timeCommits } from './timed-store.js';

/** Just enough of a store: `commit` records its batches, `listCheckpoints` reads `this`. */
class FakeStore {
  readonly kind = 'pglite' as const;
  readonly batches: Parameters<Store['commit']>[0][] = [];
  fail = false;
  async commit(batch: Parameters<Store['commit']>[0]): Promise<void> {
    await new Promise((r) => setTimeout(r, 2));
    if (this.fail) throw new Error('boom');
    this.batches.push(batch);
  }
  async listCheckpoints(): Promise<number> {
    return this.batches.length;
  }
}

const checkpoint = { step: 1, node: null, graphVersion: 'v', state: {} };

describe('timeCommits', () => {
  it('times commits while recording, split by whether they carry a checkpoint', async () => {
    const raw = new FakeStore();
    const times = new CommitTimes();
    const store = timeCommits(raw as unknown as Store, times);
    await store.commit({ runId: 'r', events: [] }); // not recording: untimed
    times.recording = true;
    await store.commit({ runId: 'r', events: [], checkpoint });
    await store.commit({ runId: 'r', events: [] });
    await store.commit({ runId: 'r', events: [] });
    times.recording = false;
    expect(raw.batches).toHaveLength(4);
    expect(times.withCheckpoint).toHaveLength(1);
    expect(times.withoutCheckpoint).toHaveLength(2);
    expect(times.withCheckpoint[0]).toBeGreaterThanOrEqual(1);
  });

  it('passes every other member through, bound to the store', async () => {
    const raw = new FakeStore();
    const store = timeCommits(raw as unknown as Store, new CommitTimes());
    expect(store.kind).toBe('pglite');
    await store.commit({ runId: 'r', events: [] });
    const { listCheckpoints } = store;
    expect(await listCheckpoints('r')).toBe(1);
  });

  it('counts a failed commit, does not time it, and rethrows', async () => {
    const raw = new FakeStore();
    const times = new CommitTimes();
    const store = timeCommits(raw as unknown as Store, times);
    times.recording = true;
    raw.fail = true;
    await expect(store.commit({ runId: 'r', events: [], checkpoint })).rejects.toThrow('boom');
    expect(times.failed).toBe(1);
    expect(times.withCheckpoint).toHaveLength(0);
    times.reset();
    expect(times.failed).toBe(1);
  });
});
