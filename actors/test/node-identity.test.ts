import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graph } from '@ao/graphs';
import type { AoError, GraphBuilder } from '@ao/graphs';
import { InProcessBus, NodeIdentity, OfflineLlm, thisProcess } from '@ao/runtime';
import type { LlmPort, Store } from '@ao/runtime';
import { postgresAvailable } from '@ao/runtime/testing';
import { Engine } from '../src/mod.js';
import { allEvents, gate, openStore, sleep, toolsWith, until } from './harness.js';
import type { StoreKind } from './harness.js';

const pgUp = await postgresAvailable();

/** A model that never answers on its own: it waits until its call is aborted. */
function stuckLlm(): LlmPort & { calls: number } {
  const llm = {
    provider: 'stuck',
    calls: 0,
    complete(_req: Parameters<LlmPort['complete']>[0], signal?: AbortSignal): ReturnType<LlmPort['complete']> {
      llm.calls += 1;
      return new Promise((_, reject) =>
        signal?.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })), { once: true }),
      );
    },
  };
  return llm;
}

const g = graph('held').node('a', { agent: 'pipeline', instructions: 'a' }).node('b', { agent: 'pipeline' }).edge('a', 'b') as GraphBuilder<unknown>;

describe.each(['pglite', 'postgres'] as const)('an engine holding its node id on %s', (kind: StoreKind) => {
  let store: Store;
  let drop: (() => Promise<void>) | undefined;
  const skip = () => kind === 'postgres' && !pgUp;
  beforeAll(async () => {
    if (!skip()) ({ store, drop } = await openStore(kind));
  });
  afterAll(async () => {
    await store?.close();
    await drop?.();
  });

  it('runs under its id, shows its host and pid, and lets the id go on shutdown', async (ctx) => {
    if (skip()) return ctx.skip();
    const identity = await NodeIdentity.take({ store, id: 'keeper', staleMs: 600 });
    const engine = await Engine.create({
      store,
      bus: new InProcessBus(),
      llm: () => new OfflineLlm(),
      tools: toolsWith(),
      identity,
      graphs: [g],
      leaseMs: 600,
      sweepIntervalMs: 0,
    });
    expect(engine.nodeId).toBe('keeper');
    expect(await engine.nodes()).toEqual([expect.objectContaining({ id: 'keeper', host: thisProcess().host, pid: process.pid })]);
    const run = await engine.startRun({ graph: 'held' });
    expect((await engine.waitForRun(run.id)).status).toBe('succeeded');
    // Beats keep the id: the database sees it fresh past several leases' worth of beats.
    const beatAt = (await store.nodeIdHolder('keeper'))!.heartbeatAt;
    await until(async () => (await store.nodeIdHolder('keeper'))!.heartbeatAt !== beatAt, 'a beat');
    await engine.shutdown();
    expect(await store.nodeIdHolder('keeper')).toBeUndefined();
  });

  it('stops hosting at once when another process takes its id over, and writes and releases nothing under it', async (ctx) => {
    if (skip()) return ctx.skip();
    const identity = await NodeIdentity.take({ store, id: 'victim', staleMs: 600 });
    const lost = gate<AoError>();
    const llm = stuckLlm();
    const engine = await Engine.create({
      store,
      bus: new InProcessBus(),
      llm: () => llm,
      tools: toolsWith(),
      identity,
      onIdentityLost: (e) => lost.open(e),
      graphs: [g],
      leaseMs: 600,
      sweepIntervalMs: 0,
    });
    const run = await engine.startRun({ graph: 'held' });
    await until(async () => (await allEvents(store, run.id)).some((e) => e.type === 'llm.request'), "node a's model call");
    // Another process takes the id (as if this one had been silent past its lease) and, with it,
    // the run's lease: the owner id is the same, so only the engine itself can stop its writes.
    await store.takeNodeId({
      id: 'victim',
      instance: 'intruder',
      host: 'other-host',
      pidNs: 'pid:[7]',
      pid: 7,
      staleMs: 600_000,
      replacing: identity.instance,
    });
    const error = await lost.promise;
    expect(error.code).toBe('AO_NODE_ID_IN_USE');
    expect(error.message).toContain('pid 7 on host other-host');
    expect(engine.activeRuns()).toEqual([]);
    const after = await store.getRun(run.id);
    // Its lease is not given up (it is the new holder's under the same owner id) ...
    expect(after).toMatchObject({ status: 'running', owner: 'victim' });
    expect(after!.leaseExpiresAt).not.toBeNull();
    // ... and nothing more is written: several renewal periods later the log has not moved.
    await sleep(1_000);
    await engine.shutdown();
    expect((await store.getRun(run.id))!.lastSeq).toBe(after!.lastSeq);
    expect(await store.nodeIdHolder('victim')).toMatchObject({ instance: 'intruder' });
    expect(llm.calls).toBe(1);
  });
});
