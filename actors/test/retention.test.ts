import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { OfflineLlm, openPgliteStore } from '@ao/runtime';
import type { LlmPort, Store } from '@ao/runtime';
import { allEvents, gate, sleep, startNode, until } from './harness.js';
import type { Engine } from '../src/mod.js';

const two = (name: string, llm = 'default') => graph(name).node('one', { agent: 'pipeline', llm }).node('two', { agent: 'pipeline', llm }).edge('one', 'two');

const keepOne = two('keep-one').retention({ keepCheckpoints: 1 }) as GraphBuilder<unknown>;
const keepAll = two('keep-all') as GraphBuilder<unknown>;
const shortLived = two('short-lived').retention({ ttlSec: 0.001 }) as GraphBuilder<unknown>;
// Everything of a finished run of this graph goes at once; its runs wait on the `held` model.
const slowShortLived = two('slow-short-lived', 'held').retention({ keepCheckpoints: 0, ttlSec: 0.001 }) as GraphBuilder<unknown>;

describe('retention (engine.sweep)', () => {
  let store: Store;
  let engine: Engine;
  const release = gate();
  beforeAll(async () => {
    store = await openPgliteStore();
    const fast = new OfflineLlm();
    const held: LlmPort = {
      provider: 'held',
      async complete(req, signal) {
        await release.promise;
        return fast.complete(req, signal);
      },
    };
    engine = await startNode({ store, nodeId: 'sweeper', graphs: [keepOne, keepAll, shortLived, slowShortLived], llm: (p) => (p === 'held' ? held : fast) });
  });
  afterAll(async () => {
    release.open();
    await engine?.shutdown();
    await store?.close();
  });

  const finish = async (graphName: string) => {
    const run = await engine.waitForRun((await engine.startRun({ graph: graphName, input: {} })).id);
    expect(run.status).toBe('succeeded');
    return run;
  };

  it('keepCheckpoints: 1 leaves a finished run only its last checkpoint, with its row and events intact; other graphs are untouched', async () => {
    const run = await finish('keep-one');
    const other = await finish('keep-all');
    const before = await store.listCheckpoints(run.id);
    const otherBefore = await store.listCheckpoints(other.id);
    expect(before.length).toBeGreaterThanOrEqual(3);
    const events = await allEvents(store, run.id);

    const swept = await engine.sweep();
    expect(swept).toEqual({ runs: 0, checkpoints: before.length - 1 });

    const after = await store.listCheckpoints(run.id);
    expect(after).toEqual([before.at(-1)]);
    expect((await store.latestCheckpoint(run.id))!.step).toBe(before.at(-1)!.step);
    expect(await store.getRun(run.id)).toEqual(run);
    expect(await allEvents(store, run.id)).toEqual(events);
    expect(await store.listCheckpoints(other.id)).toEqual(otherBefore);
    // A second sweep has nothing left to do.
    expect(await engine.sweep()).toEqual({ runs: 0, checkpoints: 0 });
  });

  it('ttlSec deletes a finished run with its events and checkpoints once the time has passed', async () => {
    const run = await finish('short-lived');
    expect((await allEvents(store, run.id)).length).toBeGreaterThan(0);
    await sleep(50);
    const swept = await engine.sweep();
    expect(swept.runs).toBe(1);
    expect(await engine.getRun(run.id)).toBeUndefined();
    expect(await allEvents(store, run.id)).toEqual([]);
    expect(await store.listCheckpoints(run.id)).toEqual([]);
    expect((await engine.listRuns({ graph: 'short-lived', limit: 10 })).runs).toEqual([]);
  });

  it('never touches a running run, however strict the policy; once it has finished, it goes', async () => {
    const run = await engine.startRun({ graph: 'slow-short-lived', input: {} });
    await until(async () => (await allEvents(store, run.id)).some((e) => e.type === 'llm.request'), 'the run to be waiting on its model');
    const checkpoints = await store.listCheckpoints(run.id);
    const events = await allEvents(store, run.id);
    expect(checkpoints.length).toBeGreaterThan(0);
    await sleep(50);

    expect(await engine.sweep()).toEqual({ runs: 0, checkpoints: 0 });
    expect((await store.getRun(run.id))!.status).toBe('running');
    expect(await store.listCheckpoints(run.id)).toEqual(checkpoints);
    expect(await allEvents(store, run.id)).toEqual(events);
    expect(engine.activeRuns()).toContain(run.id);

    release.open();
    expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
    await sleep(50);
    expect((await engine.sweep()).runs).toBe(1);
    expect(await store.getRun(run.id)).toBeUndefined();
  });
});
