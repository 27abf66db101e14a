import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { InProcessBus } from '../bus/mod.js';
import { envelopeIdFor, forwardedDraft } from '../envelope/mod.js';
import type { Envelope, ForwardedDraft } from '../envelope/mod.js';
import { Recording } from '../replay/mod.js';
import type { ReplayInfo } from '../store/mod.js';
import { openPgliteStore } from '../store/pglite/pglite-store.js';
import type { Store } from '../store/mod.js';
import { RunJournal } from './journal.js';

/** A draft of any type with an empty payload: what the journal takes from the wire (it stores what does not fit, read-only). */
const draft = (runId: string, type: string, key: string, to = 'supervisor/a', from = 'supervisor'): ForwardedDraft =>
  forwardedDraft({
    runId,
    from: from as ForwardedDraft['from'],
    to: to as ForwardedDraft['to'],
    type,
    payload: {},
    causationId: null,
    trace: null,
    dedupeKey: key,
  });

describe('RunJournal', () => {
  let store: Store;
  beforeAll(async () => {
    store = await openPgliteStore();
  });
  afterAll(() => store?.close());

  const open = async (id: string, o: { flushMs?: number; flushTurns?: number } = {}) => {
    await store.createRun({ id, graph: 'g', graphVersion: 'v', input: {}, budget: {}, nodes: {}, traceId: null, owner: 'n1', leaseMs: 60_000 });
    return new RunJournal(store, new InProcessBus(), id, 0, [], { owner: 'n1', deliver: () => undefined, isLocal: () => true, ...o });
  };

  it("an append queued behind the run's end is refused once the end is committed: the journal reads ended when it fails", async () => {
    const j = await open('j-end');
    // In flight first, so the two below are taken together as one batch.
    const first = j.append([draft('j-end', 'node.start', 'a/start')]);
    const end = j.append([draft('j-end', 'run.finished', 'run.finished', 'supervisor')], { patch: { status: 'succeeded' } });
    let endedWhenRefused: boolean | undefined;
    const late = j.append([draft('j-end', 'budget.granted', 'x/grant')], { stage: true }).catch((e: unknown) => {
      endedWhenRefused = j.ended;
      throw e;
    });
    await first;
    await end;
    await expect(late).rejects.toThrow(/has ended/);
    expect(endedWhenRefused).toBe(true);
    expect((await store.listEvents('j-end', { limit: 10 })).map((e) => e.type)).toEqual(['node.start', 'run.finished']);
  });

  it("commits a lone effect's intent at once, and holds one (the batch window) while another announced effect's intent is on its way, to commit both together", async () => {
    const j = await open('j-window');
    const keyed = (type: string, key: string, to = 'supervisor/budget') => ({
      ...draft('j-window', type, `${key}/${type}`, to, 'supervisor/a'),
      payload: { key },
    });
    const commit = vi.spyOn(store, 'commit');
    try {
      await j.append([keyed('budget.request', 'k1')], { stage: true });
      const first = j.append([keyed('tool.call', 'k1', 'tool/noop')]);
      // No other effect announced: the commit is made in the same turn, no window.
      expect(commit).toHaveBeenCalledTimes(1);
      await first;
      // Two branches announced their calls; the first intent waits for the second's.
      await j.append([keyed('budget.request', 'k2'), keyed('budget.request', 'k3')], { stage: true });
      const second = j.append([keyed('tool.call', 'k2', 'tool/noop')]);
      expect(commit).toHaveBeenCalledTimes(1);
      await new Promise<void>((r) => setImmediate(r));
      const third = j.append([keyed('tool.call', 'k3', 'tool/noop')]);
      await Promise.all([second, third]);
      expect(commit).toHaveBeenCalledTimes(2);
      expect(commit.mock.calls[1]![0].events.map((e) => e.type)).toEqual(['budget.request', 'budget.request', 'tool.call', 'tool.call']);
    } finally {
      commit.mockRestore();
    }
  });

  it('stages what may wait and commits it with the next durable append, in seq order', async () => {
    const j = await open('j-stage');
    await j.append([draft('j-stage', 'budget.request', 'k/budget')], { stage: true });
    expect(await store.listEvents('j-stage', { limit: 10 })).toEqual([]);
    await j.append([draft('j-stage', 'tool.call', 'k/call', 'tool/noop')]);
    expect((await store.listEvents('j-stage', { limit: 10 })).map((e) => [e.seq, e.type])).toEqual([
      [1, 'budget.request'],
      [2, 'tool.call'],
    ]);
  });

  it('a staged envelope with nothing after it is committed by the flush timer', async () => {
    const j = await open('j-flush', { flushMs: 1 });
    await j.append([draft('j-flush', 'node.completed', 'a/done')], { stage: true });
    await expect.poll(async () => (await store.listEvents('j-flush', { limit: 10 })).map((e) => e.type), { timeout: 30_000 }).toEqual(['node.completed']);
  });

  it('on a busy event loop the flush timer waits for the work queued ahead of it: the request and the intent it leads to commit once', async () => {
    const j = await open('j-busy', { flushMs: 1 });
    const commits: number[] = [];
    const was = RunJournal.afterCommit;
    RunJournal.afterCommit = (n) => commits.push(n);
    try {
      await j.append([draft('j-busy', 'budget.request', 'k/budget')], { stage: true });
      // The grant and the intent are a few turns away, each turn slower than the timer: the loop is busy.
      const hop = (n: number): Promise<void> =>
        new Promise((resolve) =>
          setImmediate(() => {
            const until = Date.now() + 3;
            while (Date.now() < until);
            resolve(n > 1 ? hop(n - 1) : undefined);
          }),
        );
      await hop(10);
      await j.append([draft('j-busy', 'tool.call', 'k/call', 'tool/noop')]);
    } finally {
      RunJournal.afterCommit = was;
    }
    expect(commits).toEqual([2]);
    expect((await store.listEvents('j-busy', { limit: 10 })).map((e) => [e.seq, e.type])).toEqual([
      [1, 'budget.request'],
      [2, 'tool.call'],
    ]);
  });

  it('a staged append made while a durable commit is in flight is taken at once and rides in the next commit', { timeout: 60_000 }, async () => {
    await store.createRun({ id: 'j-during', graph: 'g', graphVersion: 'v', input: {}, budget: {}, nodes: {}, traceId: null, owner: 'n1', leaseMs: 60_000 });
    // A store whose commits wait at a gate: the first commit stays in flight until the test opens it.
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let entered!: () => void;
    const inFlight = new Promise<void>((r) => (entered = r));
    const gated = new Proxy(store, {
      get(t, p) {
        if (p === 'commit') return async (c: Parameters<Store['commit']>[0]) => (entered(), await gate, t.commit(c));
        const v = Reflect.get(t, p) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
    const commits: number[] = [];
    const was = RunJournal.afterCommit;
    RunJournal.afterCommit = (n) => commits.push(n);
    try {
      const j = new RunJournal(gated, new InProcessBus(), 'j-during', 0, [], { owner: 'n1', deliver: () => undefined, isLocal: () => true });
      const intent = j.append([draft('j-during', 'tool.call', 'x/call', 'tool/noop', 'supervisor/x')]);
      await inFlight;
      // Another actor's staged grant: taken now (before the fix it waited behind the gated commit,
      // which this test opens only once the grant is taken: it hung).
      const [grant] = await j.append([draft('j-during', 'budget.granted', 'y/grant', 'supervisor/y', 'supervisor/budget')], { stage: true });
      expect(grant!.seq).toBe(2);
      open();
      await intent;
      await j.flush();
    } finally {
      RunJournal.afterCommit = was;
    }
    expect(commits).toEqual([1, 1]);
    expect((await store.listEvents('j-during', { limit: 10 })).map((e) => [e.seq, e.type])).toEqual([
      [1, 'tool.call'],
      [2, 'budget.granted'],
    ]);
  });

  it('a staged append does not jump ahead of a queued checkpoint: a resume from the checkpoint would skip it', { timeout: 60_000 }, async () => {
    await store.createRun({ id: 'j-cp', graph: 'g', graphVersion: 'v', input: {}, budget: {}, nodes: {}, traceId: null, owner: 'n1', leaseMs: 60_000 });
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    let entered!: () => void;
    const inFlight = new Promise<void>((r) => (entered = r));
    let first = true;
    const gated = new Proxy(store, {
      get(t, p) {
        if (p === 'commit') return async (c: Parameters<Store['commit']>[0]) => (first ? ((first = false), entered(), await gate) : undefined, t.commit(c));
        const v = Reflect.get(t, p) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
    const j = new RunJournal(gated, new InProcessBus(), 'j-cp', 0, [], { owner: 'n1', deliver: () => undefined, isLocal: () => true });
    const intent = j.append([draft('j-cp', 'tool.call', 'x/call', 'tool/noop', 'supervisor/x')]);
    await inFlight;
    // The supervisor's step (a checkpoint) is queued behind the commit in flight; a node's end comes after it.
    const step = j.append([], { checkpoint: { step: 1, node: null, graphVersion: 'v', state: {} } });
    const done = j.append([draft('j-cp', 'node.completed', 'y/done', 'supervisor', 'supervisor/y')], { stage: true });
    open();
    await Promise.all([intent, step, done]);
    await j.flush();
    const [cp] = await store.listCheckpoints('j-cp');
    const completed = (await store.listEvents('j-cp', { limit: 10 })).find((e) => e.type === 'node.completed')!;
    // The node's end is after the checkpoint's seq: a resume from the checkpoint delivers it.
    expect(completed.seq).toBeGreaterThan(cp!.seq);
  });

  it('a strict append of a recorded replay that diverges writes the divergence alone and fails AO_REPLAY_DIVERGED; later strict appends fail without writing', async () => {
    // The original: the supervisor opened a wait, then slept.
    const orig = (seq: number, type: string, key: string, payload: unknown): Envelope => ({
      ...draft('orig', type, key, 'supervisor'),
      id: envelopeIdFor('orig', key),
      runId: 'orig',
      seq,
      time: new Date(0).toISOString(),
      payload,
    });
    const info: ReplayInfo = { of: 'orig', fromStep: 0, mode: 'recorded', overrides: null, baseSeq: 0, originalVersion: 'v', divergence: null };
    await store.createRun({
      id: 'j-strict',
      graph: 'g',
      graphVersion: 'v',
      input: {},
      budget: {},
      nodes: {},
      traceId: null,
      owner: 'n1',
      leaseMs: 60_000,
      replay: info,
    });
    const recording = new Recording('orig', 'j-strict', 'recorded', 0, [
      orig(1, 'wait.opened', 'w/opened', { prompt: 'Go?' }),
      orig(2, 'run.waiting', 'waiting/1', {}),
    ]);
    const diverged: unknown[] = [];
    const j = new RunJournal(store, new InProcessBus(), 'j-strict', 0, [], {
      owner: 'n1',
      deliver: () => undefined,
      isLocal: () => true,
      replay: { recording, info, deliver: () => undefined, onDiverged: (d) => diverged.push(d) },
    });
    const opened = { ...draft('j-strict', 'wait.opened', 'w/opened', 'supervisor'), payload: { prompt: 'Go now?' } };
    const step = j.append([opened, draft('j-strict', 'run.waiting', 'waiting/1', 'supervisor')], {
      patch: { status: 'waiting' },
      checkpoint: { step: 1, node: null, graphVersion: 'v', state: {} },
      strict: true,
    });
    await expect(step).rejects.toMatchObject({ code: 'AO_REPLAY_DIVERGED', details: { step: 1, actor: 'supervisor' } });
    expect(diverged).toHaveLength(1);
    const events = await store.listEvents('j-strict', { limit: 10 });
    expect(events.map((e) => e.type)).toEqual(['replay.diverged']);
    const run = await store.getRun('j-strict');
    expect(run?.status).not.toBe('waiting');
    expect(run?.replay?.divergence?.diff.join('\n')).toContain('payload.prompt');
    expect(await store.listCheckpoints('j-strict')).toEqual([]);
    // Diverged already: a strict append is refused before anything is written; one that ends the run is not strict.
    await expect(j.append([draft('j-strict', 'node.start', 'a/start')], { strict: true })).rejects.toMatchObject({ code: 'AO_REPLAY_DIVERGED' });
    await j.append([draft('j-strict', 'run.finished', 'run.finished', 'supervisor')], { patch: { status: 'failed' } });
    expect((await store.listEvents('j-strict', { limit: 10 })).map((e) => [e.seq, e.type])).toEqual([
      [1, 'replay.diverged'],
      [2, 'run.finished'],
    ]);
  });
});
