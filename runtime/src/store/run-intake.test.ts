import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AoError } from '@ao/graphs';
import { openPgliteStore } from './pglite/pglite-store.js';
import { RunIntake } from './run-intake.js';
import type { DrizzleStore } from './drizzle-store.js';
import type { NewRun } from './records.js';
import type { Store } from './port.js';

let n = 0;
const newRun = (o: Partial<NewRun> = {}): NewRun => ({
  id: `intake-${++n}`,
  graph: 'g',
  graphVersion: 'v1',
  input: { n },
  budget: {},
  nodes: {},
  traceId: null,
  owner: 'n1',
  leaseMs: 60_000,
  ...o,
});

const codeOf = (r: PromiseSettledResult<unknown>) => (r.status === 'rejected' && r.reason instanceof AoError ? r.reason.code : undefined);

describe('RunIntake: concurrent submits, one insert', () => {
  let store: DrizzleStore;
  beforeAll(async () => {
    store = await openPgliteStore();
  });
  afterAll(async () => store.close());

  /** The store, counting the statements the intake makes. */
  function counted(): { store: Pick<Store, 'createRun' | 'createRuns'>; batches: number[]; singles: () => number } {
    const batches: number[] = [];
    let singles = 0;
    return {
      batches,
      singles: () => singles,
      store: {
        createRun: (r) => (singles++, store.createRun(r)),
        createRuns: (rs) => (batches.push(rs.length), store.createRuns(rs)),
      },
    };
  }

  it('stores runs submitted together with fewer inserts than runs, each submitter getting its own run, committed', async () => {
    const c = counted();
    const intake = new RunIntake(c.store);
    const runs = Array.from({ length: 50 }, () => newRun({ tenant: 'burst' }));
    const stored = await Promise.all(runs.map((r) => intake.create(r)));
    expect(stored.map((r) => r.id)).toEqual(runs.map((r) => r.id));
    expect(stored.every((r) => r.status === 'pending' && r.tenant === 'burst')).toBe(true);
    expect(c.batches.length).toBeLessThan(50);
    expect(c.batches.reduce((a, b) => a + b, 0)).toBe(50);
    for (const r of runs) expect(await store.getRun(r.id)).toBeDefined();
  });

  it('gives one run per idempotency key, also when both submits are in one batch; the other is refused alone', async () => {
    const intake = new RunIntake(store);
    const first = newRun({ tenant: 'keys', idempotencyKey: 'k1', requestHash: 'h' });
    const second = newRun({ tenant: 'keys', idempotencyKey: 'k1', requestHash: 'h' });
    const other = newRun({ tenant: 'keys', idempotencyKey: 'k2' });
    const settled = await Promise.allSettled([intake.create(first), intake.create(second), intake.create(other)]);
    expect(settled[0]!.status).toBe('fulfilled');
    expect(codeOf(settled[1]!)).toBe('AO_IDEMPOTENCY_KEY_REUSED');
    expect(settled[2]!.status).toBe('fulfilled');
    expect((await store.findRunByIdempotencyKey('keys', 'k1'))?.run.id).toBe(first.id);
    // A later submit with a key already stored is refused the same way.
    await expect(intake.create(newRun({ tenant: 'keys', idempotencyKey: 'k2' }))).rejects.toMatchObject({ code: 'AO_IDEMPOTENCY_KEY_REUSED' });
  });

  it('fails only the bad run of a batch whose statement fails', async () => {
    const bad = newRun({ graph: 'bad' });
    const failing: Pick<Store, 'createRun' | 'createRuns'> = {
      createRun: async (r) => {
        if (r.graph === 'bad') throw new Error('bad row');
        return store.createRun(r);
      },
      createRuns: async (rs) => {
        if (rs.some((r) => r.graph === 'bad')) throw new Error('bad row');
        return store.createRuns(rs);
      },
    };
    const intake = new RunIntake(failing);
    const good = [newRun(), newRun()];
    const settled = await Promise.allSettled([intake.create(good[0]!), intake.create(bad), intake.create(good[1]!)]);
    expect(settled.map((s) => s.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((settled[1] as PromiseRejectedResult).reason).toMatchObject({ message: 'bad row' });
    for (const r of good) expect(await store.getRun(r.id)).toBeDefined();
    expect(await store.getRun(bad.id)).toBeUndefined();
  });

  it('is idle at once after a lone submit, and after a burst once it is stored', async () => {
    const intake = new RunIntake(store);
    await intake.create(newRun());
    let idle = false;
    const lone = intake.idle().then(() => (idle = true));
    await Promise.resolve();
    await lone;
    expect(idle).toBe(true);
    const burst = Array.from({ length: 10 }, () => intake.create(newRun()));
    let stored = 0;
    for (const b of burst) void b.then(() => stored++);
    await intake.idle();
    expect(stored).toBe(10);
  });

  it("holds the burst's runs until quietMs after the last insert ended, not only after the last submit", async () => {
    // An insert that holds the thread (PGlite runs on it): no request is read meanwhile, so its
    // end, not the last submit before it, is when the quiet starts.
    let insertEnded = 0;
    const slow: Pick<Store, 'createRun' | 'createRuns'> = {
      createRun: (r) => store.createRun(r),
      createRuns: async (rs) => {
        const out = await store.createRuns(rs);
        const until = performance.now() + 120;
        while (performance.now() < until) {
          // busy: the thread is held, as by a statement inside WebAssembly
        }
        insertEnded = performance.now();
        return out;
      },
    };
    const intake = new RunIntake(slow, { quietMs: 60 });
    const submits = Array.from({ length: 5 }, () => intake.create(newRun()));
    const released = await Promise.all(submits.map(async (s) => (await s, await intake.idle(), performance.now())));
    expect(insertEnded).toBeGreaterThan(0);
    for (const t of released) expect(t - insertEnded).toBeGreaterThanOrEqual(55);
  });

  it('releases a thousand waiting starts together once the burst is stored, each once', async () => {
    const intake = new RunIntake(store, { quietMs: 20 });
    let released = 0;
    const waits = await Promise.all(
      Array.from({ length: 1_000 }, async () => {
        await intake.create(newRun());
        await intake.idle();
        released++;
        return performance.now();
      }),
    );
    expect(released).toBe(1_000);
    // One release, not a thousand timers: all within a few ms of each other.
    expect(Math.max(...waits) - Math.min(...waits)).toBeLessThan(50);
  });

  it('does not count a burst as over while a submit is on its way to create (held), but keeps the deadline', async () => {
    const intake = new RunIntake(store, { quietMs: 20, maxDeferMs: 2_000 });
    const release = intake.hold();
    let idle = false;
    await Promise.all(Array.from({ length: 3 }, () => intake.create(newRun())));
    const waiting = intake.idle().then(() => (idle = true));
    // Far past the quiet: the held submit (waiting on the cap's count, say) is still part of the burst.
    await new Promise((r) => setTimeout(r, 200));
    expect(idle).toBe(false);
    release();
    await waiting;
    // A hold never released delays the start by the deadline at most.
    intake.hold();
    await Promise.all(Array.from({ length: 3 }, () => intake.create(newRun())));
    const t0 = performance.now();
    await intake.idle();
    expect(performance.now() - t0).toBeLessThan(10_000);
  });

  it('falls back to one insert per run for a store without createRuns', async () => {
    const intake = new RunIntake({ createRun: (r) => store.createRun(r) });
    const runs = [newRun(), newRun()];
    expect((await Promise.all(runs.map((r) => intake.create(r)))).map((r) => r.id)).toEqual(runs.map((r) => r.id));
  });
});
