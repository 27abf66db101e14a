import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { defineTool, OfflineLlm, openPgliteStore, openPgStore } from '@ao/runtime';
import type { Envelope, LlmPort, Store } from '@ao/runtime';
import { captureLog, createTestDatabase, postgresAvailable } from '@ao/runtime/testing';
import { allEvents, countingLlm, gate, sleep, startNode, toolsWith, until } from './harness.js';
import type { Engine } from '../src/mod.js';

const pgUp = await postgresAvailable();

/** The log is gapless (seq 1..n), has unique ids, and ends with exactly one run.finished. */
function expectWholeLog(evs: Envelope[]): void {
  expect(evs.map((e) => e.seq)).toEqual(evs.map((_, i) => i + 1));
  expect(new Set(evs.map((e) => e.id)).size).toBe(evs.length);
  expect(evs.filter((e) => e.type === 'run.finished')).toHaveLength(1);
  expect(evs.at(-1)!.type).toBe('run.finished');
}

const has = (store: Store, runId: string, pred: (e: Envelope) => boolean, what: string) => until(async () => (await allEvents(store, runId)).find(pred), what);

/** A model that waits for `g` (or an abort) before answering for node `node`; other nodes answer at once. */
function heldLlm(node: string, g: Promise<void>): LlmPort & { held: number } {
  const inner = new OfflineLlm();
  const llm = {
    provider: 'held',
    held: 0,
    async complete(req: Parameters<LlmPort['complete']>[0], signal?: AbortSignal) {
      const user = req.messages.find((m) => m.role === 'user')?.content ?? '';
      if (user.startsWith(`Node: ${node} `)) {
        llm.held += 1;
        await new Promise<void>((resolve, reject) => {
          const onAbort = () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
          if (signal?.aborted) return onAbort();
          signal?.addEventListener('abort', onAbort, { once: true });
          void g.then(resolve);
        });
      }
      return inner.complete(req, signal);
    },
  };
  return llm;
}

describe('recovery when a run changes hands between engines on one store', () => {
  let store: Store;
  const engines: Engine[] = [];
  const node = async (o: Parameters<typeof startNode>[0]) => {
    const e = await startNode(o);
    engines.push(e);
    return e;
  };
  beforeAll(async () => {
    store = await openPgliteStore();
  });
  afterAll(async () => {
    for (const e of engines) await e.shutdown();
    await store?.close();
  });

  it('a run resumed by a second engine after the first shut down mid-run (graceful handover) ends with the same output, a whole log, and each idempotent write made once per key', async () => {
    const calls: string[] = [];
    const ledger = defineTool({
      name: 'ledger',
      description: 'Append an entry to the ledger (once per idempotency key).',
      effect: 'idempotent',
      input: z.object({ entry: z.string() }),
      async handler({ entry }, ctx) {
        calls.push(ctx.idempotencyKey);
        return { entry };
      },
    });
    const g = graph('handover')
      .node('first', { agent: 'pipeline', tools: ['ledger'], args: () => ({ ledger: { entry: 'first' } }) })
      .node('second', { agent: 'pipeline', tools: ['ledger'], args: () => ({ ledger: { entry: 'second' } }) })
      .node('third', { agent: 'pipeline', tools: ['ledger'], args: () => ({ ledger: { entry: 'third' } }) })
      .edge('first', 'second')
      .edge('second', 'third') as GraphBuilder<unknown>;
    const tools = toolsWith(ledger);

    const a = await node({ store, nodeId: 'handover-a', graphs: [g], tools, llm: new OfflineLlm({ latencyMs: 150 }) });
    const run = await a.startRun({ graph: 'handover', input: { topic: 'handover' } });
    // `first` is done; `second` has written its ledger entry and waits on the model.
    await has(store, run.id, (e) => e.type === 'llm.request' && e.from === 'supervisor/second', "second's model call");
    await a.shutdown();
    const mid = (await store.getRun(run.id))!;
    expect(mid).toMatchObject({ status: 'running', owner: null, leaseExpiresAt: null });
    expect(mid.nodes.second!.status).toBe('running');
    const seqAtHandover = mid.lastSeq;

    const b = await node({ store, nodeId: 'handover-b', graphs: [g], tools, llm: new OfflineLlm({ latencyMs: 150 }) });
    expect(b.activeRuns()).toEqual([run.id]); // claimed at start-up
    const resumed = await b.waitForRun(run.id);
    expect(resumed.status).toBe('succeeded');

    const clean = await b.waitForRun((await b.startRun({ graph: 'handover', input: { topic: 'handover' } })).id);
    expect(clean.status).toBe('succeeded');
    expect(resumed.output).toEqual(clean.output);
    expect(resumed.usage).toEqual(clean.usage);

    await sleep(300); // anything still unwinding on the stopped engine has had time to write
    const evs = await allEvents(store, run.id);
    expectWholeLog(evs);
    expect(evs.filter((e) => e.seq > seqAtHandover && e.type === 'run.started')).toEqual([]);
    expect(evs.filter((e) => e.type === 'node.completed').map((e) => (e.payload as { node: string }).node)).toEqual(['first', 'second', 'third']);
    // Each ledger key written exactly once for the resumed run (and once for the clean run).
    const keysOf = (id: string) => calls.filter((k) => k.startsWith(`${id}/`));
    expect(keysOf(run.id)).toHaveLength(3);
    expect(new Set(keysOf(run.id)).size).toBe(3);
    expect(keysOf(clean.id)).toHaveLength(3);
    const results = evs.filter((e) => e.type === 'tool.result');
    expect(results.map((e) => (e.payload as { result: { entry: string } }).result.entry)).toEqual(['first', 'second', 'third']);
  });

  describe('an unsafe tool in flight when its engine stopped', () => {
    /** A one-node graph whose node calls the unsafe tool `name`, and the engine that leaves the call hanging. */
    async function inFlight(name: string, status?: () => Promise<{ done: true; result: unknown } | { done: false }>) {
      const handled: string[] = [];
      const statusAsked: string[] = [];
      const never = gate(); // the first engine's call never returns
      const tool = (hang: boolean) =>
        defineTool({
          name,
          description: 'Charge the customer (not idempotent).',
          effect: 'unsafe',
          input: z.object({ amountCents: z.number().int().positive() }),
          async handler(_args, ctx) {
            handled.push(ctx.idempotencyKey);
            if (hang) await never.promise;
            return { chargeId: `ch_${handled.length}` };
          },
          ...(status
            ? {
                async status(_args: unknown, ctx: { idempotencyKey: string }) {
                  statusAsked.push(ctx.idempotencyKey);
                  return status();
                },
              }
            : {}),
        });
      const g = graph(`pay-${name}`)
        .node('pay', { agent: 'pipeline', tools: [name], args: () => ({ [name]: { amountCents: 500 } }) })
        .node('receipt', { agent: 'pipeline' })
        .edge('pay', 'receipt') as GraphBuilder<unknown>;
      const a = await node({ store, nodeId: `${name}-a`, graphs: [g], tools: toolsWith(tool(true)) });
      const run = await a.startRun({ graph: g.name, input: { order: 42 } });
      await has(store, run.id, (e) => e.type === 'tool.call', 'the tool call');
      await until(() => handled.length === 1, 'the handler to be entered');
      await a.shutdown();
      const llm = countingLlm();
      const b = await node({ store, nodeId: `${name}-b`, graphs: [g], tools: toolsWith(tool(false)), llm });
      const done = await b.waitForRun(run.id);
      // Tools get the idempotency key `runId/actor/n`; payloads name the effect by `actor/n` (the same in a replay).
      return { run, done, b, handled, statusAsked, key: handled[0]!, local: handled[0]!.slice(run.id.length + 1), evs: await allEvents(store, run.id), llm };
    }

    it('is not called again by the resuming engine: the run is parked `waiting` with AO_EFFECT_UNKNOWN_OUTCOME, and a person can then cancel it', async () => {
      const { run, done, b, handled, key, local, evs, llm } = await inFlight('charge');
      expect(handled).toEqual([key]); // only the first engine's call
      expect(done.status).toBe('waiting');
      expect(done.error).toMatchObject({ code: 'AO_EFFECT_UNKNOWN_OUTCOME' });
      expect(done.error!.message).toContain(key);
      expect(done.owner).toBeNull();
      expect(done.nodes.receipt!.status).toBe('pending');
      expect(b.activeRuns()).not.toContain(run.id);
      expect(evs.filter((e) => e.type === 'effect.unknown_outcome').map((e) => e.payload)).toEqual([
        { key: local, name: 'charge', args: { amountCents: 500 } },
      ]);
      expect(evs.filter((e) => e.type === 'tool.result')).toEqual([]);
      expect(evs.at(-1)).toMatchObject({ type: 'run.parked', payload: { error: { code: 'AO_EFFECT_UNKNOWN_OUTCOME' } } });
      expect(llm.calls).toBe(0); // it stopped at the tool, before the node's model call
      expect(evs.map((e) => e.seq)).toEqual(evs.map((_, i) => i + 1));

      const cancelled = await b.cancel(run.id, 'the charge went through; closing by hand');
      expect(cancelled.status).toBe('cancelled');
      expect(cancelled.error).toMatchObject({ code: 'AO_RUN_CANCELLED', message: 'the charge went through; closing by hand' });
      expect(handled).toEqual([key]);
    });

    it('with a status() check answering done, is not called again: the recorded result is its answer and the run completes', async () => {
      const { done, handled, statusAsked, key, local, evs } = await inFlight('charge_checked', async () => ({
        done: true,
        result: { chargeId: 'ch_reconciled' },
      }));
      expect(handled).toEqual([key]);
      expect(statusAsked).toEqual([key]); // asked with the same idempotency key
      expect(done.status).toBe('succeeded');
      expect(evs.filter((e) => e.type === 'effect.reconciled').map((e) => e.payload)).toEqual([{ key: local, name: 'charge_checked', done: true }]);
      expect(evs.filter((e) => e.type === 'tool.result').map((e) => e.payload)).toEqual([
        { key: local, name: 'charge_checked', ok: true, result: { chargeId: 'ch_reconciled' } },
      ]);
      expect(evs.some((e) => e.type === 'effect.unknown_outcome')).toBe(false);
      expectWholeLog(evs);
    });

    it('with a status() check answering not done, is called again once, with the same idempotency key', async () => {
      const { done, handled, statusAsked, key, local, evs } = await inFlight('charge_retry', async () => ({ done: false }));
      expect(statusAsked).toEqual([key]);
      expect(handled).toEqual([key, key]);
      expect(done.status).toBe('succeeded');
      expect(evs.filter((e) => e.type === 'effect.reconciled').map((e) => e.payload)).toEqual([{ key: local, name: 'charge_retry', done: false }]);
      expect(evs.filter((e) => e.type === 'tool.result').map((e) => (e.payload as { result: unknown }).result)).toEqual([{ chargeId: 'ch_2' }]);
      expectWholeLog(evs);
    });
  });

  // Regression (fixed) (runtime/src/actor-system/actor-system.ts, via nact 7.6.2): stopping an actor does not stop
  // its children, and ActorSystem.shutdown() stops no actor at all (nact's Actor.stop() and
  // ActorSystem.stop() call functions.stop(child) with the concrete Actor, which systemMap.find
  // cannot resolve). Engine.shutdown() stops each run supervisor, but its node actors keep running,
  // their abort signals never fire, and their in-flight calls go on after the leases were released.
  // Here the stopped engine's node gets its model answer after the handover, goes on to call the
  // unsafe tool, and the customer is charged twice (once by each engine). Fix: have RefImpl.stop()
  // stop its child refs first (depth first) and ActorSystem.shutdown() stop the top-level refs it
  // spawned, instead of relying on nact to cascade.
  it('a node of an engine that shut down does not go on, after the handover, to call an unsafe tool the resuming engine calls too', async () => {
    let charges = 0;
    const charge = defineTool({
      name: 'charge_once',
      description: 'Charge the customer.',
      effect: 'unsafe',
      input: z.object({ amountCents: z.number().int().positive() }),
      async handler() {
        charges += 1;
        return { chargeId: `ch_${charges}` };
      },
    });
    // No args: the model decides to call the tool (the offline model calls every offered tool once).
    const g = graph('zombie').node('pay', { agent: 'pipeline', tools: ['charge_once'] }) as GraphBuilder<unknown>;
    const tools = toolsWith(charge);
    const answer = gate();
    const a = await node({ store, nodeId: 'zombie-a', graphs: [g], tools, llm: heldLlm('pay', answer.promise) });
    const run = await a.startRun({ graph: 'zombie', input: { order: 7 } });
    await has(store, run.id, (e) => e.type === 'llm.request', "pay's first model call");
    await a.shutdown();
    const b = await node({ store, nodeId: 'zombie-b', graphs: [g], tools });
    expect((await b.waitForRun(run.id)).status).toBe('succeeded');
    expect(charges).toBe(1);
    // The model call the first engine made before it stopped now answers.
    answer.open();
    await sleep(300);
    expect(charges).toBe(1);
  });

  describe('runs pinned to the graph version they started on', () => {
    const v1 = graph('pin').node('a', { agent: 'pipeline', instructions: 'a' }).node('z', { agent: 'pipeline' }).edge('a', 'z') as GraphBuilder<unknown>;
    const changed = () => graph('pin').node('a', { agent: 'pipeline', instructions: 'b' }).node('z', { agent: 'pipeline' }).edge('a', 'z');

    /** Start a `pin` run on v1 and shut its engine down while node `a` waits on the model. */
    async function startOnV1(nodeId: string) {
      const a = await node({ store, nodeId, graphs: [v1], llm: heldLlm('a', gate().promise) });
      const run = await a.startRun({ graph: 'pin', input: { n: 1 } });
      await has(store, run.id, (e) => e.type === 'llm.request', "a's model call");
      await a.shutdown();
      expect((await store.getRun(run.id))!).toMatchObject({ status: 'running', graphVersion: v1.build().version, owner: null });
      return run;
    }

    it('a run handed over to an engine with a changed graph of the same name is parked `waiting` with AO_GRAPH_VERSION_CHANGED, not run', async () => {
      const v2 = changed() as GraphBuilder<unknown>;
      expect(v2.build().version).not.toBe(v1.build().version);
      const run = await startOnV1('pin-a1');
      const before = await allEvents(store, run.id);
      const llm = countingLlm();
      const b = await node({ store, nodeId: 'pin-b', graphs: [v2], llm });
      const parked = await b.waitForRun(run.id);
      expect(parked.status).toBe('waiting');
      expect(parked.error).toMatchObject({ code: 'AO_GRAPH_VERSION_CHANGED' });
      expect(parked.error!.message).toContain(v1.build().version);
      expect(parked.graphVersion).toBe(v1.build().version);
      expect(parked.owner).toBeNull();
      expect(b.activeRuns()).toEqual([]);
      expect(llm.calls).toBe(0);
      const evs = await allEvents(store, run.id);
      expect(evs.slice(before.length).map((e) => e.type)).toEqual(['run.parked']);
      expect(evs.some((e) => e.type === 'run.migrated')).toBe(false);
    });

    it('with .compatibleWith(v1) on the changed graph it resumes, records run.migrated, and succeeds on the new version', async () => {
      const v2 = changed().compatibleWith(v1.build().version) as GraphBuilder<unknown>;
      const run = await startOnV1('pin-a2');
      // Watch for a "dropped invalid envelope ... run.migrated" log (a fixed bug: see the test below).
      const logs = captureLog();
      const c = await node({ store, nodeId: 'pin-c', graphs: [v2] });
      const done = await c.waitForRun(run.id).finally(() => logs.restore());
      expect(done.status).toBe('succeeded');
      expect(done.graphVersion).toBe(v2.build().version);
      const evs = await allEvents(store, run.id);
      expect(evs.filter((e) => e.type === 'run.migrated').map((e) => e.payload)).toEqual([{ from: v1.build().version, to: v2.build().version }]);
      expectWholeLog(evs);
      // Node `a`, in flight at the handover, ran again on the new version's instructions.
      const outputOf = (n: string) =>
        (evs.find((e) => e.type === 'node.completed' && (e.payload as { node: string }).node === n)!.payload as { output: { text: string } }).output.text;
      expect(outputOf('a')).toContain('answering "b');
    });

    // Regression (fixed) (actors/src/messages.ts PAYLOADS): `run.migrated` (engine.ts resume) is addressed to the run
    // supervisor but is not a known message type, so every migrated resume logs
    // "[supervisor <run>] dropped invalid envelope ...: unknown message type run.migrated"
    // (run-supervisor.ts parseMessage catch). `run.parked`, `effect.reconciled` and
    // `effect.unknown_outcome` are missing from PAYLOADS too (not delivered to a parsing actor today,
    // but the catalogue is meant to cover every envelope type). Fix: add their payload schemas to
    // PAYLOADS (and let the supervisor ignore run.migrated as an observation).
    it('resuming a migrated run logs no dropped-envelope error', async () => {
      const v2 = changed().compatibleWith(v1.build().version) as GraphBuilder<unknown>;
      const run = await startOnV1('pin-a3');
      const logs = captureLog();
      try {
        const c = await node({ store, nodeId: 'pin-d', graphs: [v2] });
        expect((await c.waitForRun(run.id)).status).toBe('succeeded');
        expect(logs.lines()).toEqual([]);
      } finally {
        logs.restore();
      }
    });
  });
});

describe('recovery after a node dies without a word (lease expiry) on Postgres', () => {
  it('a second engine on its own connection takes the run over once the dead engine’s lease expires, and completes it', async (ctx) => {
    if (!pgUp) return ctx.skip();
    const db = await createTestDatabase();
    const storeA = await openPgStore({ url: db.url });
    const storeB = await openPgStore({ url: db.url });
    const logs = captureLog();
    const g = graph('lease')
      .node('one', { agent: 'pipeline' })
      .node('two', { agent: 'pipeline' })
      .node('three', { agent: 'pipeline' })
      .edge('one', 'two')
      .edge('two', 'three') as GraphBuilder<unknown>;
    let a: Engine | undefined;
    let b: Engine | undefined;
    try {
      a = await startNode({ store: storeA, nodeId: 'dies', graphs: [g], leaseMs: 600, llm: new OfflineLlm({ latencyMs: 250 }) });
      const run = await a.startRun({ graph: 'lease', input: { topic: 'leases' } });
      await has(storeB, run.id, (e) => e.type === 'node.completed', 'the first node to finish');
      // The process "dies": its connection is gone, so it can neither renew its lease nor write.
      await storeA.close();

      b = await startNode({ store: storeB, nodeId: 'survivor', graphs: [g], leaseMs: 400, claimIntervalMs: 50 });
      // The lease is still live: the survivor does not take the run at start-up.
      expect(b.activeRuns()).toEqual([]);
      expect((await storeB.getRun(run.id))!.owner).toBe('dies');
      // Watched in the store, not in activeRuns(): the survivor's offline model answers at once, so
      // it may finish the run between two probes and no longer host it (CI saw that race under
      // load); nor by waitForRun, which answers with the run's status at once when it is not hosted
      // here yet (claimed in the store, not yet resumed). Only the survivor can write: the dead
      // node's connection is closed.
      await until(async () => (await storeB.getRun(run.id))!.status === 'succeeded', 'the survivor to finish the run', 60_000);
      const done = (await storeB.getRun(run.id))!;

      const clean = await b.waitForRun((await b.startRun({ graph: 'lease', input: { topic: 'leases' } })).id);
      expect(done.output).toEqual(clean.output);
      const evs = await allEvents(storeB, run.id);
      expectWholeLog(evs);
      expect(evs.filter((e) => e.type === 'node.completed').map((e) => (e.payload as { node: string }).node)).toEqual(['one', 'two', 'three']);
    } finally {
      await a?.shutdown();
      await b?.shutdown();
      await storeB.close();
      await db.drop();
      logs.restore();
    }
  });
});
