import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../envelope/mod.js';
import { ContentPacker, refsIn, resolveRefs } from './content-refs.js';
import { DrizzleStore } from './drizzle-store.js';
import type { Db } from './drizzle-store.js';
import { dictionaryRowsOf, inflateText } from './journal-zip.js';
import { migrationsFolder } from './migrations.js';
import { schema } from './schema.js';

/** Pack, then read back as the store does: the references resolved from what the packer wrote. */
function roundTrip(json: string, min = 8): { packed: string; back: string } {
  const pk = new ContentPacker('r', undefined, min);
  const packed = pk.pack(json);
  return { packed, back: resolveRefs(packed, (h) => pk.fresh.get(h), 'test') };
}

describe('content references', () => {
  it('replaces long strings (keys too) by references and restores them exactly, escapes included', () => {
    const value = {
      'a long key, longer than eight': 'he said "hi"\\ and left\n',
      short: 'ok',
      list: ['x\\', 'ends with a quote "', '\uE000short', '\uE000 and long enough to be stored', 12, null],
      é: 'ünïcödé text long enough',
    };
    const { packed, back } = roundTrip(JSON.stringify(value));
    expect(packed).not.toContain('he said');
    expect(packed).toContain('"ok"');
    expect(JSON.parse(back)).toEqual(value);
  });

  it('restores any JSON value exactly (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.integer({ min: 1, max: 40 }), (v, min) => {
        const json = JSON.stringify(v);
        const { back } = roundTrip(json, min);
        expect(back).toBe(json);
      }),
      { numRuns: 500 },
    );
    // Strings that start with the marker, short and long, among others.
    fc.assert(
      fc.property(fc.array(fc.string().map((s) => `\uE000${s}`)), fc.integer({ min: 1, max: 20 }), (list, min) => {
        const json = JSON.stringify(list);
        expect(roundTrip(json, min).back).toBe(json);
      }),
    );
  });

  it('names each content once, and not again when the run is known to hold it', () => {
    const text = 'x'.repeat(300);
    const first = new ContentPacker('r', undefined, 256);
    const a = first.pack(JSON.stringify({ a: text, b: [text] }));
    expect(first.fresh.size).toBe(1);
    expect(refsIn(a)).toHaveLength(2);
    const next = new ContentPacker('r', new Set(first.fresh.keys()), 256);
    expect(next.pack(JSON.stringify({ c: text }))).toBe(`{"c":"\uE000${[...first.fresh.keys()][0]}"}`);
    expect(next.fresh.size).toBe(0);
  });

  it('refuses a reference to content the store does not hold (AO_STORE_CORRUPT)', () => {
    const pk = new ContentPacker('r', undefined, 4);
    const packed = pk.pack('"hello world"');
    expect(() => resolveRefs(packed, () => undefined, 'row 1')).toThrow(expect.objectContaining({ code: 'AO_STORE_CORRUPT' }));
  });
});

describe('a run stores a long string once, wherever its envelopes and checkpoints repeat it', () => {
  let client: PGlite;
  let store: DrizzleStore;
  beforeAll(async () => {
    client = new PGlite();
    const db = drizzle({ client, schema });
    await migrate(db, { migrationsFolder });
    // Strings from 256 characters on are stored by reference here (the default is 64 KiB).
    store = new DrizzleStore(
      'pglite',
      db as unknown as Db,
      () => client.close(),
      async (_n, text, values) => (await client.query<Record<string, unknown>>(text, values)).rows,
      1,
      256,
    );
  });
  afterAll(async () => {
    await store.close();
  });

  const answer = `The answer, ${'long enough to be stored once. '.repeat(20)}`;
  const env = (runId: string, seq: number, payload: unknown): Envelope =>
    ({
      id: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}`.replace(/^0{8}/, runId === 'c-1' ? '11111111' : '22222222'),
      runId,
      seq,
      type: 'node.completed',
      from: 'supervisor/a',
      to: 'supervisor',
      payload,
      causationId: null,
      trace: null,
      time: new Date().toISOString(),
    }) as Envelope;

  it('writes one content row for many mentions across commits of every path, and reads back whole envelopes and checkpoints', async () => {
    for (const id of ['c-1', 'c-2'])
      await store.createRun({ id, graph: 'g', graphVersion: 'v', input: {}, budget: {}, nodes: {}, traceId: null, owner: 'n1', leaseMs: 60_000 });
    const one = [env('c-1', 1, { content: answer }), env('c-1', 2, { output: { text: answer }, history: [answer, 'short'] })];
    // Grouped commit, one-statement commit with a patch and a checkpoint, transaction (signals), append without owner.
    await store.commit({ runId: 'c-1', events: one, owner: 'n1' });
    await store.commit({
      runId: 'c-1',
      events: [env('c-1', 3, { again: answer })],
      patch: { status: 'running' },
      checkpoint: { step: 1, node: 'a', graphVersion: 'v', state: { outputs: { a: { text: answer } } } },
      owner: 'n1',
    });
    await store.commit({
      runId: 'c-1',
      events: [env('c-1', 4, { more: answer })],
      patch: { consumeSignals: ['none'] },
      checkpoints: [{ step: 2, seq: 4, node: null, graphVersion: 'v', state: { outputs: { a: { text: answer } } } }],
      owner: 'n1',
    });
    await store.commit({ runId: 'c-2', events: [env('c-2', 1, { content: answer })] });
    const rows = await client.query<{ run_id: string; n: number }>('select run_id, count(*)::int as n from contents group by run_id order by run_id');
    expect(rows.rows).toEqual([
      { run_id: 'c-1', n: 1 },
      { run_id: 'c-2', n: 1 },
    ]);
    // The rows' bodies as written (deflated: log format 4), inflated here.
    const stored = await client.query<{ seq: number; z: string }>("select seq, encode(packed, 'base64') as z from journal where run_id = 'c-1' order by seq");
    const texts = new Map<number, string>();
    for (const r of stored.rows) {
      const z = Buffer.from(r.z, 'base64');
      const d = dictionaryRowsOf(z);
      const dict = d && {
        ...d,
        text: [...texts]
          .filter(([seq]) => seq >= d.from && seq <= d.to)
          .map(([, t]) => t)
          .join('\n'),
      };
      texts.set(r.seq, inflateText(z, dict, 'test'));
    }
    expect(texts.size).toBe(3);
    expect([...texts.values()].every((t) => !t.includes('long enough'))).toBe(true);
    const log = await store.listEvents('c-1', { limit: 10 });
    expect(log.map((e) => e.payload)).toEqual([
      { content: answer },
      { output: { text: answer }, history: [answer, 'short'] },
      { again: answer },
      { more: answer },
    ]);
    expect((await store.getEvents('c-1', [one[1]!.id]))[0]?.payload).toEqual(one[1]!.payload);
    expect((await store.eventsAfter([{ runId: 'c-1', after: 2 }])).get('c-1')!.map((e) => e.payload)).toEqual([{ again: answer }, { more: answer }]);
    expect((await store.firstEvents(['c-1', 'c-2'])).get('c-2')?.payload).toEqual({ content: answer });
    expect((await store.latestCheckpoint('c-1'))?.state).toEqual({ outputs: { a: { text: answer } } });
    expect((await store.getCheckpoint('c-1', 1))?.state).toEqual({ outputs: { a: { text: answer } } });
    expect((await store.latestCheckpoints(['c-1'])).get('c-1')?.sizeBytes).toBeLessThan(answer.length);
  });

  it('retention deletes a content once no kept checkpoint and no journal row references it, and keeps every other', async () => {
    const [onlyOld, alsoKept, alsoLogged] = ['only the old checkpoint', 'the kept checkpoint too', 'the log too'].map(
      (w) => `${w}: ${'text long enough to be stored once. '.repeat(10)}`,
    );
    await store.createRun({ id: 'c-3', graph: 'g-ret', graphVersion: 'v', input: {}, budget: {}, nodes: {}, traceId: null, owner: 'n1', leaseMs: 60_000 });
    await store.commit({ runId: 'c-3', events: [{ ...env('c-3', 1, { said: alsoLogged }), id: '33333333-0000-4000-8000-000000000001' }], owner: 'n1' });
    await store.commit({
      runId: 'c-3',
      events: [],
      checkpoints: [{ step: 1, seq: 1, node: null, graphVersion: 'v', state: { a: onlyOld, b: alsoKept, c: alsoLogged } }],
      owner: 'n1',
    });
    await store.commit({
      runId: 'c-3',
      events: [],
      checkpoints: [{ step: 2, seq: 1, node: null, graphVersion: 'v', state: { b: alsoKept } }],
      patch: { status: 'succeeded' },
      owner: 'n1',
    });
    const count = async () => Number((await client.query<{ n: number }>("select count(*)::int as n from contents where run_id = 'c-3'")).rows[0]!.n);
    expect(await count()).toBe(3);
    expect(await store.sweep('g-ret', { keepCheckpoints: 1 })).toEqual({ runs: 0, checkpoints: 1 });
    expect(await count()).toBe(2);
    expect((await store.getCheckpoint('c-3', 2))?.state).toEqual({ b: alsoKept });
    expect((await store.listEvents('c-3', { limit: 10 })).map((e) => e.payload)).toEqual([{ said: alsoLogged }]);
    // Nothing more to delete: the rest is referenced.
    expect(await store.sweep('g-ret', { keepCheckpoints: 0 })).toEqual({ runs: 0, checkpoints: 1 });
    expect(await count()).toBe(1);
    expect((await store.listEvents('c-3', { limit: 10 })).map((e) => e.payload)).toEqual([{ said: alsoLogged }]);
  });

  it('deleting a run deletes its contents', async () => {
    await client.query("delete from runs where id = 'c-2'");
    expect((await client.query("select 1 from contents where run_id = 'c-2'")).rows).toEqual([]);
  });
});
