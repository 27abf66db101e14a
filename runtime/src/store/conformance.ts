import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEnvelopeId } from '../envelope/mod.js';
import type { Envelope } from '../envelope/mod.js';
import type { Store } from './port.js';
import { resolveRunRef } from './run-ref.js';

/** Every store adapter must pass this suite (PGlite and Postgres). */
export function storeConformance(
  name: string,
  open: () => Promise<{ store: Store; cleanup?: () => Promise<void> }>,
  opts: { skip?: () => boolean } = {},
): void {
  describe(`store conformance: ${name}`, () => {
    let store: Store;
    let cleanup: (() => Promise<void>) | undefined;
    beforeAll(async () => {
      if (opts.skip?.()) return;
      ({ store, cleanup } = await open());
    });
    afterAll(async () => {
      await store?.close();
      await cleanup?.();
    });
    const maybe = (title: string, fn: () => Promise<void>) => it(title, async (ctx) => (opts.skip?.() ? ctx.skip() : fn()));

    const newRun = (id: string, graph = 'g') =>
      store.createRun({ id, graph, graphVersion: 'v1', input: { a: 1 }, budget: {}, nodes: {}, traceId: null, owner: 'n1', leaseMs: 60_000 });
    const ev = (runId: string, seq: number, type = 'node.started'): Envelope => ({
      id: newEnvelopeId(),
      runId,
      seq,
      from: 'supervisor' as Envelope['from'],
      to: 'supervisor/a' as Envelope['to'],
      type,
      payload: { seq, nested: { ok: true } },
      causationId: null,
      trace: null,
      time: new Date().toISOString(),
    });

    maybe('creates a run as pending and reads it back', async () => {
      const r = await newRun('run-create');
      expect(r).toMatchObject({ id: 'run-create', status: 'pending', input: { a: 1 }, lastSeq: 0, owner: 'n1' });
      expect(await store.getRun('run-create')).toEqual(r);
      expect(await store.getRun('nope')).toBeUndefined();
    });

    maybe('eventsById with upTo searches the log up to it: an envelope at or below it is found, one above it is not', async () => {
      await newRun('run-upto');
      const evs = [1, 2, 3, 4, 5].map((s) => ev('run-upto', s));
      for (const e of evs) await store.commit({ runId: 'run-upto', events: [e] });
      const id = evs[3]!.id;
      expect((await store.eventsById([{ runId: 'run-upto', id, upTo: 4 }])).map((e) => e.seq)).toEqual([4]);
      expect(await store.eventsById([{ runId: 'run-upto', id, upTo: 3 }])).toEqual([]);
      expect((await store.eventsById([{ runId: 'run-upto', id }])).map((e) => e.seq)).toEqual([4]);
      // A ref without a bound searches the whole log, for every ref.
      expect(
        (
          await store.eventsById([
            { runId: 'run-upto', id, upTo: 1 },
            { runId: 'run-upto', id: evs[0]!.id },
          ])
        ).map((e) => e.seq),
      ).toEqual([1, 4]);
    });

    maybe('commits events and a run patch together and pages events by seq', async () => {
      await newRun('run-events');
      const evs = [1, 2, 3, 4, 5].map((s) => ev('run-events', s));
      await store.commit({ runId: 'run-events', events: evs.slice(0, 3), patch: { status: 'running' } });
      await store.commit({ runId: 'run-events', events: evs.slice(3) });
      const run = await store.getRun('run-events');
      expect(run).toMatchObject({ status: 'running', lastSeq: 5 });
      expect((await store.listEvents('run-events', { limit: 100 })).map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
      const page = await store.listEvents('run-events', { after: 2, limit: 2 });
      expect(page.map((e) => e.seq)).toEqual([3, 4]);
      expect(page[0]).toEqual(evs[2]);
      expect((await store.listEvents('run-events', { after: 1, upTo: 3, limit: 100 })).map((e) => e.seq)).toEqual([2, 3]);
    });

    maybe('long strings in payloads and checkpoints (stored once per run, by reference) read back whole, through every commit path', async () => {
      await newRun('run-long');
      const long = `"quoted" \\ \uE000 ${'é'.repeat(70_000)}`; // past the default AO_CONTENT_MIN_BYTES (64 KiB)
      const evs = [1, 2, 3, 4].map((s) => ({ ...ev('run-long', s), payload: { s, long, list: [long, '\uE000short'] } }));
      await store.commit({ runId: 'run-long', events: evs.slice(0, 1), owner: 'n1' });
      await store.commit({
        runId: 'run-long',
        events: evs.slice(1, 2),
        patch: { status: 'running' },
        checkpoint: { step: 1, node: 'a', graphVersion: 'v1', state: { long } },
        owner: 'n1',
      });
      await store.commit({ runId: 'run-long', events: evs.slice(2, 3), patch: { consumeSignals: ['none'] }, owner: 'n1' });
      await store.commit({ runId: 'run-long', events: evs.slice(3) });
      expect(await store.listEvents('run-long', { limit: 10 })).toEqual(evs);
      expect((await store.latestCheckpoint('run-long'))?.state).toEqual({ long });
    });

    maybe('writing the same event id twice is a no-op', async () => {
      await newRun('run-dup');
      const e = ev('run-dup', 1);
      await store.commit({ runId: 'run-dup', events: [e] });
      await store.commit({ runId: 'run-dup', events: [e] });
      expect(await store.listEvents('run-dup', { limit: 10 })).toHaveLength(1);
    });

    maybe('refuses a second event with the same seq (the log stays gapless and unique)', async () => {
      await newRun('run-seq');
      await store.commit({ runId: 'run-seq', events: [ev('run-seq', 1)] });
      await expect(store.commit({ runId: 'run-seq', events: [ev('run-seq', 1)] })).rejects.toThrow();
      expect(await store.listEvents('run-seq', { limit: 10 })).toHaveLength(1);
    });

    maybe('a new run is leased to its owner, so no claim sees it as free', async () => {
      await newRun('run-leased');
      const claimed = await store.claimRuns({ owner: 'n2', leaseMs: 1000, limit: 100, reclaimOwn: false, exclude: [] });
      expect(claimed.map((r) => r.id)).not.toContain('run-leased');
      expect((await store.getRun('run-leased'))!.leaseExpiresAt).not.toBeNull();
    });

    maybe('creates a batch of runs in one go (the intake): each as createRun stores it, in order, a taken idempotency key skipped', async () => {
      if (!store.createRuns) return;
      const base = { graphVersion: 'v1', budget: { maxTokens: 10 }, traceId: null, owner: 'n1', leaseMs: 60_000 };
      await store.createRun({
        ...base,
        id: 'batch-orig',
        graph: 'b',
        input: { q: 'orig' },
        nodes: {},
        tenant: 't-batch',
        idempotencyKey: 'k-taken',
        requestHash: 'h0',
      });
      const made = await store.createRuns([
        {
          ...base,
          id: 'batch-1',
          graph: 'b',
          input: { z: 1, a: [1, 'two', null], nested: { ok: true } },
          nodes: { n1: { status: 'pending', iteration: 0, attempt: 0 } },
          tenant: 't-batch',
          idempotencyKey: 'k-1',
          requestHash: 'h1',
        },
        { ...base, id: 'batch-2', graph: 'b', input: 'a string input', nodes: {}, tenant: 't-batch', idempotencyKey: 'k-taken', requestHash: 'h2' },
        { ...base, id: 'batch-3', graph: 'b', input: { b: 3 }, nodes: {}, traceId: 'abc', tenant: 't-batch' },
        { ...base, id: 'batch-4', graph: 'b', input: {}, nodes: {}, tenant: 't-batch', idempotencyKey: 'k-1', requestHash: 'h4' },
        {
          ...base,
          id: 'batch-5',
          graph: 'b',
          input: { c: 5 },
          nodes: {},
          replay: { of: 'batch-orig', fromStep: 1, mode: 'live', overrides: null, baseSeq: 0, originalVersion: 'v1', divergence: null },
        },
      ]);
      // A key taken before, or earlier in the same batch, skips its run; the others are stored.
      expect(made.map((r) => r?.id)).toEqual(['batch-1', undefined, 'batch-3', undefined, 'batch-5']);
      for (const r of made) if (r) expect(await store.getRun(r.id)).toEqual(r);
      expect(made[0]).toMatchObject({
        status: 'pending',
        owner: 'n1',
        tenant: 't-batch',
        idempotencyKey: 'k-1',
        lastSeq: 0,
        waits: [],
        cancelRequested: false,
        input: { z: 1, a: [1, 'two', null], nested: { ok: true } },
      });
      expect(made[0]!.leaseExpiresAt).not.toBeNull();
      expect(made[2]).toMatchObject({ traceId: 'abc', idempotencyKey: null });
      // A replay belongs to its original's tenant.
      expect(made[4]).toMatchObject({ tenant: 't-batch', replay: { of: 'batch-orig', fromStep: 1, mode: 'live' } });
      expect(await store.findRunByIdempotencyKey('t-batch', 'k-1')).toMatchObject({ run: { id: 'batch-1' }, requestHash: 'h1' });
      // In the order given: newest last.
      expect((await store.listRuns({ graph: 'b', limit: 10 })).runs.map((r) => r.id)).toEqual(['batch-5', 'batch-3', 'batch-1', 'batch-orig']);
    });

    maybe('claims a run whose lease expired, once, and renews only its own leases', async () => {
      await store.createRun({ id: 'run-expired', graph: 'g', graphVersion: 'v1', input: {}, budget: {}, nodes: {}, traceId: null, owner: 'dead', leaseMs: 1 });
      await new Promise((r) => setTimeout(r, 20));
      const [a, b] = await Promise.all([
        store.claimRuns({ owner: 'n2', leaseMs: 5000, limit: 100, reclaimOwn: false, exclude: [] }),
        store.claimRuns({ owner: 'n3', leaseMs: 5000, limit: 100, reclaimOwn: false, exclude: [] }),
      ]);
      const winners = [...a, ...b].filter((r) => r.id === 'run-expired');
      expect(winners).toHaveLength(1);
      const owner = winners[0]!.owner!;
      const other = owner === 'n2' ? 'n3' : 'n2';
      expect((await store.renewLeases(other, ['run-expired'], 5000)).renewed).toEqual([]);
      expect((await store.renewLeases(owner, ['run-expired'], 5000)).renewed).toEqual(['run-expired']);
      expect(await store.requestCancel('run-expired')).toBe(true);
      expect((await store.renewLeases(owner, ['run-expired'], 5000)).cancelRequested).toEqual(['run-expired']);
    });

    maybe('a run handed out by the work queue is claimed by exactly one node, and not while another holds it', async () => {
      await store.createRun({
        id: 'run-queued',
        graph: 'g',
        graphVersion: 'v1',
        input: {},
        budget: {},
        nodes: {},
        traceId: null,
        owner: 'queue',
        leaseMs: 60_000,
      });
      // The claim loop leaves it to the queue until its placeholder lease expires.
      expect((await store.claimRuns({ owner: 'n9', leaseMs: 1000, limit: 100, reclaimOwn: false, exclude: [] })).map((r) => r.id)).not.toContain('run-queued');
      const [a, b] = await Promise.all([
        store.claimRun({ id: 'run-queued', owner: 'n2', leaseMs: 5000, from: 'queue' }),
        store.claimRun({ id: 'run-queued', owner: 'n3', leaseMs: 5000, from: 'queue' }),
      ]);
      expect([a, b].filter(Boolean)).toHaveLength(1);
      expect((a ?? b)!.owner).toMatch(/^n[23]$/);
      // A redelivered item finds it taken.
      expect(await store.claimRun({ id: 'run-queued', owner: 'n4', leaseMs: 5000, from: 'queue' })).toBeUndefined();
    });

    maybe('a commit fenced by its owner writes nothing once another node holds the run (AO_LEASE_LOST)', async () => {
      await store.createRun({ id: 'run-fenced', graph: 'g', graphVersion: 'v1', input: {}, budget: {}, nodes: {}, traceId: null, owner: 'old', leaseMs: 1 });
      await store.commit({ runId: 'run-fenced', events: [ev('run-fenced', 1)], owner: 'old' });
      await new Promise((r) => setTimeout(r, 20));
      expect((await store.claimRuns({ owner: 'new', leaseMs: 5000, limit: 100, reclaimOwn: false, exclude: [] })).map((r) => r.id)).toContain('run-fenced');
      await expect(store.commit({ runId: 'run-fenced', events: [ev('run-fenced', 2)], patch: { status: 'failed' }, owner: 'old' })).rejects.toMatchObject({
        code: 'AO_LEASE_LOST',
      });
      expect(await store.listEvents('run-fenced', { limit: 10 })).toHaveLength(1);
      expect((await store.getRun('run-fenced'))!).toMatchObject({ owner: 'new', lastSeq: 1 });
      await store.commit({ runId: 'run-fenced', events: [ev('run-fenced', 2)], owner: 'new' });
      expect((await store.getRun('run-fenced'))!.lastSeq).toBe(2);
      // An append of events alone (the grouped path) is fenced the same way.
      await expect(store.commit({ runId: 'run-fenced', events: [ev('run-fenced', 3)], owner: 'old' })).rejects.toMatchObject({ code: 'AO_LEASE_LOST' });
      expect(await store.listEvents('run-fenced', { limit: 10 })).toHaveLength(2);
    });

    maybe('appends of many runs at once all land, gapless; a fenced one among them fails alone', async () => {
      const ids = Array.from({ length: 12 }, (_, i) => `run-group-${i}`);
      for (const id of ids) await newRun(id);
      await store.createRun({
        id: 'run-group-lost',
        graph: 'g',
        graphVersion: 'v1',
        input: {},
        budget: {},
        nodes: {},
        traceId: null,
        owner: 'other',
        leaseMs: 60_000,
      });
      const results = await Promise.allSettled([
        ...ids.flatMap((id) => [store.commit({ runId: id, events: [ev(id, 1), ev(id, 2)], owner: 'n1' })]),
        store.commit({ runId: 'run-group-lost', events: [ev('run-group-lost', 1)], owner: 'n1' }),
      ]);
      expect(results.slice(0, ids.length).every((r) => r.status === 'fulfilled')).toBe(true);
      expect(results.at(-1)).toMatchObject({ status: 'rejected', reason: { code: 'AO_LEASE_LOST' } });
      for (const id of ids) {
        await store.commit({ runId: id, events: [ev(id, 3)], owner: 'n1' });
        expect((await store.listEvents(id, { limit: 10 })).map((e) => e.seq)).toEqual([1, 2, 3]);
        expect((await store.getRun(id))!.lastSeq).toBe(3);
      }
      expect(await store.listEvents('run-group-lost', { limit: 10 })).toEqual([]);
    });

    maybe("a step's commit writes its events, run patch and checkpoint together, the checkpoint at the run's last seq", async () => {
      await newRun('run-step');
      await store.commit({ runId: 'run-step', events: [ev('run-step', 1), ev('run-step', 2)], owner: 'n1' });
      const state = { nodes: { a: 'done' }, text: 'é' };
      await store.commit({
        runId: 'run-step',
        events: [ev('run-step', 3)],
        patch: { status: 'running', usage: { inputTokens: 1, outputTokens: 2, totalTokens: 3, llmCalls: 1, toolCalls: 0, perTool: {} } },
        checkpoint: { step: 1, node: 'a', graphVersion: 'v1', state },
        owner: 'n1',
      });
      const cp = await store.latestCheckpoint('run-step');
      expect(cp).toMatchObject({ step: 1, seq: 3, node: 'a', state, sizeBytes: Buffer.byteLength(JSON.stringify(state)) });
      expect(await store.getRun('run-step')).toMatchObject({ status: 'running', lastSeq: 3, usage: { totalTokens: 3 } });
      // A second copy of a step's checkpoint is refused (its key), and nothing of its commit is written.
      await expect(
        store.commit({
          runId: 'run-step',
          events: [ev('run-step', 4)],
          patch: { status: 'running' },
          checkpoint: { step: 1, node: 'a', graphVersion: 'v1', state },
          owner: 'n1',
        }),
      ).rejects.toThrow();
      expect(await store.listEvents('run-step', { limit: 10 })).toHaveLength(3);
      // A grouped commit (it only moves the run on) retried after an unknown outcome is idempotent:
      // nothing is written twice, and it does not fail the other runs of its group.
      const again = ev('run-step', 4);
      await store.commit({ runId: 'run-step', events: [again], checkpoints: [{ step: 2, seq: 4, node: 'b', graphVersion: 'v1', state }], owner: 'n1' });
      await store.commit({ runId: 'run-step', events: [again], checkpoints: [{ step: 2, seq: 4, node: 'b', graphVersion: 'v1', state }], owner: 'n1' });
      expect(await store.listEvents('run-step', { limit: 10 })).toHaveLength(4);
      expect((await store.listCheckpoints('run-step')).map((c) => [c.step, c.seq])).toEqual([
        [1, 3],
        [2, 4],
      ]);
    });

    maybe('a commit that carries several steps writes each checkpoint at its own seq (staged steps ride in one commit)', async () => {
      await newRun('run-steps');
      const a = { nodes: { a: 'done' } };
      const b = { nodes: { a: 'done', b: 'done' } };
      await store.commit({
        runId: 'run-steps',
        events: [1, 2, 3, 4, 5].map((n) => ev('run-steps', n)),
        patch: { nodes: {} },
        checkpoints: [
          { step: 1, seq: 2, node: 'a', graphVersion: 'v1', state: a },
          { step: 2, seq: 4, node: 'b', graphVersion: 'v1', state: b },
        ],
        owner: 'n1',
      });
      expect((await store.listCheckpoints('run-steps')).map((c) => [c.step, c.seq, c.node])).toEqual([
        [1, 2, 'a'],
        [2, 4, 'b'],
      ]);
      expect(await store.latestCheckpoint('run-steps')).toMatchObject({ step: 2, seq: 4, state: b });
      expect((await store.getRun('run-steps'))!.lastSeq).toBe(5);
      // Signals consumed with the steps take the transaction: the same seqs there.
      await store.commit({
        runId: 'run-steps',
        events: [ev('run-steps', 6), ev('run-steps', 7)],
        patch: { consumeSignals: ['none'] },
        checkpoints: [{ step: 3, seq: 6, node: null, graphVersion: 'v1', state: a }],
        owner: 'n1',
      });
      expect((await store.getCheckpoint('run-steps', 3))?.seq).toBe(6);
    });

    maybe('reads what resuming many runs needs in one read each: latest checkpoints, first events, events by id, events after a seq', async () => {
      for (const id of ['rs-a', 'rs-b', 'rs-c']) await newRun(id);
      const a = [1, 2, 3, 4].map((n) => ev('rs-a', n));
      const b = [1, 2].map((n) => ev('rs-b', n));
      await store.commit({
        runId: 'rs-a',
        events: a,
        patch: { nodes: {} },
        checkpoints: [
          { step: 1, seq: 2, node: null, graphVersion: 'v', state: { s: 1 } },
          { step: 2, seq: 3, node: null, graphVersion: 'v', state: { s: 2 } },
        ],
        owner: 'n1',
      });
      await store.commit({ runId: 'rs-b', events: b, owner: 'n1' });
      const cps = await store.latestCheckpoints(['rs-a', 'rs-b', 'rs-c']);
      expect([...cps.keys()]).toEqual(['rs-a']);
      expect(cps.get('rs-a')).toMatchObject({ step: 2, seq: 3, state: { s: 2 } });
      const first = await store.firstEvents(['rs-a', 'rs-b', 'rs-c']);
      expect(first.get('rs-a')?.id).toBe(a[0]!.id);
      expect(first.get('rs-b')?.id).toBe(b[0]!.id);
      expect(first.has('rs-c')).toBe(false);
      expect(
        (
          await store.eventsById([
            { runId: 'rs-a', id: a[2]!.id },
            { runId: 'rs-b', id: b[1]!.id },
            { runId: 'rs-a', id: 'ffffffff-ffff-4fff-bfff-ffffffffffff' },
            { runId: 'rs-a', id: b[0]!.id },
          ])
        )
          .map((e) => e.id)
          .sort(),
      ).toEqual([a[2]!.id, b[1]!.id].sort());
      const after = await store.eventsAfter([
        { runId: 'rs-a', after: 2 },
        { runId: 'rs-b', after: 0 },
        { runId: 'rs-c', after: 0 },
      ]);
      expect(after.get('rs-a')!.map((e) => e.seq)).toEqual([3, 4]);
      expect(after.get('rs-b')!.map((e) => e.seq)).toEqual([1, 2]);
      expect(after.get('rs-c')).toEqual([]);
      expect(await store.latestCheckpoints([])).toEqual(new Map());
    });

    maybe('lists runs newest first, filtered, with a cursor', async () => {
      for (let i = 0; i < 5; i++) await newRun(`list-${i}`, i % 2 ? 'odd' : 'even');
      const p1 = await store.listRuns({ graph: 'even', limit: 2 });
      expect(p1.runs.map((r) => r.id)).toEqual(['list-4', 'list-2']);
      expect(p1.next).not.toBeNull();
      const p2 = await store.listRuns({ graph: 'even', limit: 2, cursor: p1.next! });
      expect(p2.runs.map((r) => r.id)).toEqual(['list-0']);
      expect(p2.next).toBeNull();
      await store.commit({ runId: 'list-1', events: [], patch: { status: 'succeeded' } });
      expect((await store.listRuns({ status: 'succeeded', limit: 10 })).runs.map((r) => r.id)).toContain('list-1');
    });

    maybe('imports a whole finished run in one go: its row as it ended, its log, its checkpoints; a second import of it is AO_RUN_EXISTS', async () => {
      const id = 'run-imported';
      const big = 'x'.repeat(70_000); // stored once by reference, read back whole
      const events = [1, 2, 3, 4, 5].map((s) => ({ ...ev(id, s), ...(s === 4 ? { payload: { big } } : {}) }));
      const run = {
        id,
        graph: 'g',
        graphVersion: 'v1',
        status: 'succeeded' as const,
        input: { a: 1 },
        output: { done: true },
        error: null,
        budget: { tokens: 10 },
        usage: { inputTokens: 1, outputTokens: 2, totalTokens: 3, llmCalls: 1, toolCalls: 0, perTool: {} },
        nodes: { a: { status: 'succeeded' as const, iteration: 1, attempt: 1 } },
        traceId: null,
        replay: null,
        tenant: 't-import',
        createdAt: '2026-01-02T03:04:05.000Z',
        startedAt: '2026-01-02T03:04:05.100Z',
        finishedAt: '2026-01-02T03:04:06.000Z',
      };
      const cps = [
        { step: 0, seq: 2, node: null, graphVersion: 'v1', state: { at: 0 }, createdAt: '2026-01-02T03:04:05.200Z' },
        { step: 1, seq: 5, node: 'a', graphVersion: 'v1', state: { at: 1, big }, createdAt: '2026-01-02T03:04:05.900Z' },
      ];
      const r = await store.importRun({ run, events, checkpoints: cps });
      expect(r).toMatchObject({ ...run, owner: null, leaseExpiresAt: null, lastSeq: 5, waits: [], wakeAt: null, idempotencyKey: null });
      expect(await store.getRun(id)).toEqual(r);
      expect(await store.listEvents(id, { limit: 100 })).toEqual(events);
      expect((await store.listEvents(id, { after: 2, upTo: 4, limit: 100 })).map((e) => e.seq)).toEqual([3, 4]);
      expect((await store.listCheckpoints(id)).map((c) => [c.step, c.seq, c.node])).toEqual([
        [0, 2, null],
        [1, 5, 'a'],
      ]);
      expect((await store.getCheckpoint(id, 1))?.state).toEqual({ at: 1, big });
      // A finished run held by no one: no node takes it over.
      expect((await store.claimRuns({ owner: 'n-import', leaseMs: 1000, limit: 100, reclaimOwn: true, exclude: [] })).map((x) => x.id)).not.toContain(id);
      await expect(store.importRun({ run, events, checkpoints: cps })).rejects.toMatchObject({ code: 'AO_RUN_EXISTS' });
      expect(await store.listEvents(id, { limit: 100 })).toHaveLength(5);
    });

    maybe('finds runs by id prefix with an index range (wildcards in the prefix are literal) and by creation time', async () => {
      const ids = ['c0ffee01-0000-4000-8000-000000000001', 'c0ffee01-0000-4000-8000-000000000002', 'c0ffee02-0000-4000-8000-000000000001'];
      for (const id of ids) await newRun(id, 'search');
      await newRun('pre_x-1');
      await newRun('prexx-2');
      await newRun('pre%y-3');
      const byPrefix = async (idPrefix: string) => (await store.listRuns({ idPrefix, limit: 10 })).runs.map((r) => r.id).sort();
      expect(await byPrefix('c0ffee01')).toEqual(ids.slice(0, 2));
      expect(await byPrefix('c0ffee02-0000')).toEqual([ids[2]]);
      expect(await byPrefix('c0ffee03')).toEqual([]);
      expect(await byPrefix('pre_')).toEqual(['pre_x-1']);
      expect(await byPrefix('pre%')).toEqual(['pre%y-3']);
      expect((await store.listRuns({ idPrefix: 'c0ffee0', graph: 'search', limit: 1 })).next).not.toBeNull();

      const created = Date.parse((await store.getRun(ids[0]!))!.createdAt);
      const at = (ms: number) => new Date(created + ms).toISOString();
      const within = async (q: { since?: string; until?: string }) => (await store.listRuns({ graph: 'search', limit: 10, ...q })).runs.length;
      expect(await within({ since: at(-60_000), until: at(60_000) })).toBe(3);
      expect(await within({ since: at(3_600_000) })).toBe(0);
      expect(await within({ until: at(-60_000) })).toBe(0);
    });

    maybe('resolves a run reference: the full id, a unique prefix of 8+ characters (any case), never a shorter one or an ambiguous one', async () => {
      const ids = ['d00dfeed-1111-4000-8000-000000000001', 'd00dfeed-2222-4000-8000-000000000002'];
      for (const id of ids) await newRun(id);
      await store.createRun({
        id: 'e1e1e1e1-0000-4000-8000-00000000000a',
        graph: 'g',
        graphVersion: 'v1',
        input: {},
        budget: {},
        nodes: {},
        traceId: null,
        owner: 'n1',
        leaseMs: 60_000,
        tenant: 'other',
      });
      const ref = (r: string, tenant = 'default') => resolveRunRef(store, r, { tenant }).then((run) => run?.id);
      expect(await ref(ids[0]!)).toBe(ids[0]);
      expect(await ref('d00dfeed-11')).toBe(ids[0]);
      expect(await ref('D00DFEED-22')).toBe(ids[1]);
      expect(await ref('d00dfeed-33')).toBeUndefined();
      expect(await ref('no-such-run')).toBeUndefined();
      // Another tenant's run is not found by a prefix from this one (its full id is, for the caller to check).
      expect(await ref('e1e1e1e1')).toBeUndefined();
      expect(await ref('e1e1e1e1', 'other')).toBe('e1e1e1e1-0000-4000-8000-00000000000a');
      await expect(ref('d00dfee')).rejects.toMatchObject({ code: 'AO_VALIDATION', field: 'id' });
      await expect(ref('d00dfeed')).rejects.toMatchObject({
        code: 'AO_RUN_ID_AMBIGUOUS',
        field: 'id',
        details: { prefix: 'd00dfeed', candidates: expect.arrayContaining(ids) },
      });
      await expect(ref('d00dfeed')).rejects.toThrow(/d00dfeed-1111-4000-8000-000000000001/);
    });

    const claim = (id: string, instance: string, o: { host?: string; pid?: number; staleMs?: number } = {}) => ({
      id,
      instance,
      host: o.host ?? `host-${instance}`,
      pidNs: 'pid:[1]',
      pid: o.pid ?? 100,
      staleMs: o.staleMs ?? 600_000,
    });

    maybe('holds a node id for one process: refused to others while it beats, taken by compare-and-set on its instance', async () => {
      expect(await store.takeNodeId(claim('nid-one', 'a', { pid: 11 }))).toEqual({ taken: true });
      expect(await store.takeNodeId(claim('nid-one', 'a', { pid: 11 }))).toEqual({ taken: true }); // its holder again
      const refused = await store.takeNodeId(claim('nid-one', 'b', { pid: 22 }));
      expect(refused).toMatchObject({ taken: false, holder: { id: 'nid-one', instance: 'a', host: 'host-a', pidNs: 'pid:[1]', pid: 11, staleMs: 600_000 } });
      const h = (refused as { holder: { heartbeatAgeMs: number; heartbeatAt: string; startedAt: string } }).holder;
      expect(h.heartbeatAgeMs).toBeGreaterThanOrEqual(0);
      expect(h.heartbeatAgeMs).toBeLessThan(600_000);
      expect(Date.parse(h.heartbeatAt)).toBeGreaterThanOrEqual(Date.parse(h.startedAt));
      expect(await store.beatNodeId('nid-one', 'a')).toBe(true);
      expect(await store.beatNodeId('nid-one', 'b')).toBe(false);
      // Replacing an instance that does not hold it changes nothing.
      expect((await store.takeNodeId({ ...claim('nid-one', 'b', { pid: 22 }), replacing: 'not-a' })).taken).toBe(false);
      expect(await store.takeNodeId({ ...claim('nid-one', 'b', { pid: 22 }), replacing: 'a' })).toEqual({ taken: true });
      expect(await store.beatNodeId('nid-one', 'a')).toBe(false);
      expect(await store.nodeIdHolder('nid-one')).toMatchObject({ instance: 'b', host: 'host-b', pid: 22 });
      await store.releaseNodeId('nid-one', 'a'); // not its holder: nothing happens
      expect(await store.nodeIdHolder('nid-one')).toMatchObject({ instance: 'b' });
      await store.releaseNodeId('nid-one', 'b');
      expect(await store.nodeIdHolder('nid-one')).toBeUndefined();
      expect(await store.takeNodeId(claim('nid-one', 'c'))).toEqual({ taken: true });
    });

    maybe("gives a node id to the next process once its holder's heartbeat is older than the holder's lease", async () => {
      expect(await store.takeNodeId(claim('nid-stale', 'a', { staleMs: 100 }))).toEqual({ taken: true });
      // The database's clock decides; wait until it calls the beat stale.
      for (let end = Date.now() + 30_000; (await store.nodeIdHolder('nid-stale'))!.heartbeatAgeMs <= 150;) {
        if (Date.now() > end) throw new Error('the heartbeat never went stale');
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(await store.takeNodeId(claim('nid-stale', 'b'))).toEqual({ taken: true });
      expect(await store.beatNodeId('nid-stale', 'a')).toBe(false);
    });

    maybe('of many processes asking for one node id at the same moment, exactly one gets it', async () => {
      const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => store.takeNodeId(claim('nid-race', `r${i}`))));
      const winners = answers.flatMap((a, i) => (a.taken ? [`r${i}`] : []));
      expect(winners).toHaveLength(1);
      for (const a of answers) if (!a.taken) expect(a.holder?.instance).toBe(winners[0]);
    });
  });
}
