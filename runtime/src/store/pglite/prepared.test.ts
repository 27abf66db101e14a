import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PreparedStatements } from './prepared.js';

describe('PreparedStatements (PGlite)', () => {
  let client: PGlite;
  let ps: PreparedStatements;
  beforeAll(async () => {
    client = new PGlite();
    await client.exec('create table t (id text primary key, n int not null, body jsonb, at timestamptz)');
    ps = new PreparedStatements(client);
  });
  afterAll(() => client?.close());

  const UPSERT =
    'insert into t (id, n, body, at) values ($1, $2::int, $3::jsonb, $4::timestamptz) on conflict (id) do update set n = t.n + excluded.n returning id, n, body, at';

  it('answers a statement prepared once as query() does, for every set of values', async () => {
    const a = await ps.query('upsert', UPSERT, ['a', 1, '{"k":[1,2]}', '2026-12-04T10:00:00.000Z']);
    const b = await ps.query('upsert', UPSERT, ['a', 2, null, '2026-12-04T10:00:00.000Z']);
    const c = await ps.query('upsert', UPSERT, ['b', 5, '"text"', null]);
    expect(a).toEqual([{ id: 'a', n: 1, body: { k: [1, 2] }, at: new Date('2026-12-04T10:00:00.000Z') }]);
    expect(b).toEqual([{ id: 'a', n: 3, body: { k: [1, 2] }, at: new Date('2026-12-04T10:00:00.000Z') }]);
    expect(c).toEqual([{ id: 'b', n: 5, body: 'text', at: null }]);
    expect((await client.query('select id, n, body, at from t where id = $1', ['b'])).rows).toEqual(c);
  });

  it('rejects with the Postgres error, and the next call runs', async () => {
    const INSERT = 'insert into t (id, n) values ($1, $2::int)';
    await ps.query('insert', INSERT, ['dup', 1]);
    await expect(ps.query('insert', INSERT, ['dup', 1])).rejects.toMatchObject({ code: '23505' });
    await expect(ps.query('insert', INSERT, ['next', 1])).resolves.toEqual([]);
    await expect(ps.query('bad', 'select nope from t', [])).rejects.toMatchObject({ code: '42703' });
    expect((await ps.query('count', 'select count(*)::int as n from t where id = any($1::text[])', [['dup', 'next']]))[0]).toEqual({ n: 2 });
  });

  it('refuses a name prepared with another text', async () => {
    await ps.query('one', 'select 1 as x', []);
    await expect(ps.query('one', 'select 2 as x', [])).rejects.toThrow(/another text/);
  });

  it("never runs inside another caller's transaction: it waits for it to end", async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let inserted!: () => void;
    const didInsert = new Promise<void>((r) => (inserted = r));
    const tx = client.transaction(async (t) => {
      await t.query("insert into t (id, n) values ('in-tx', 1)");
      inserted();
      await held;
      await t.rollback();
    });
    await didInsert;
    const seen = ps.query('sees', "select count(*)::int as n from t where id = 'in-tx'", []);
    release();
    await tx;
    // Had it run inside the transaction, it would have seen the row the transaction rolled back.
    expect(await seen).toEqual([{ n: 0 }]);
  });
});
