import { beforeAll, describe, expect, it } from 'vitest';
import type { Envelope } from '../envelope/mod.js';
import type { DrizzleStore } from './drizzle-store.js';
import { pgliteStores } from '../testing/raw-pglite.js';
import { unpackRow } from './journal-format.js';
import { seededWords } from '../testing/words.js';

describe("a replay's turn records name its original's (format 5)", () => {
  const pg = pgliteStores();
  const open = () => pg.open();
  let store: DrizzleStore;
  beforeAll(() => {
    store = open();
  });

  let n = 0;
  const env = (runId: string, seq: number, payload: unknown): Envelope =>
    ({
      id: `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`,
      runId,
      seq,
      type: 'llm.request',
      from: 'supervisor/a',
      to: 'llm/default',
      payload,
      causationId: null,
      trace: null,
      time: new Date().toISOString(),
    }) as Envelope;

  /** `turns` requests of one agent, each adding a 1,000-character tool message, one commit each; `last` changes the last one's new message. */
  async function converse(runId: string, turns: number, original?: string, last?: string): Promise<Envelope[]> {
    const messages: unknown[] = [{ role: 'system', content: 'You read.' }];
    const out: Envelope[] = [];
    for (let t = 1; t <= turns; t++) {
      messages.push({ role: 'tool', content: t === turns && last ? last : seededWords(t, 1000) });
      const e = env(runId, t, { key: `a/${t}`, profile: 'default', messages: [...messages], tools: [] });
      out.push(e);
      await store.commit({ runId, events: [e], owner: 'n1', ...(original ? { original } : {}) });
    }
    return out;
  }
  const newRun = (id: string, of?: string) =>
    store.createRun({
      id,
      graph: 'g',
      graphVersion: 'v',
      input: {},
      budget: {},
      nodes: {},
      traceId: null,
      owner: 'n1',
      leaseMs: 60_000,
      ...(of ? { replay: { of, fromStep: 0, mode: 'recorded', overrides: null, baseSeq: 0, originalVersion: 'v', divergence: null } } : {}),
    });
  const rows = async (runId: string) =>
    (
      await pg.client.query<{ format: number; zt: number }>(
        'select format, coalesce(octet_length(packed_turns), 0)::int as zt from journal where run_id = $1 and packed_turns is not null order by seq',
        [runId],
      )
    ).rows;

  it('stores what its original added as references, reads back whole, and stores what differs as before', async () => {
    await newRun('s-orig');
    const original = await converse('s-orig', 12);
    await newRun('s-copy', 's-orig');
    const copy = await converse('s-copy', 12, 's-orig', 'something else');
    // A fresh handle (no memory of either run) reads both whole.
    const reader = open();
    expect(await reader.listEvents('s-copy', { limit: 100 })).toEqual(copy);
    expect(await reader.listEvents('s-orig', { limit: 100 })).toEqual(original);
    expect((await reader.listEvents('s-copy', { after: 5, limit: 3 })).map((e) => e.id)).toEqual(copy.slice(5, 8).map((e) => e.id));
    const records = (await reader.turnsSince([{ runId: 's-copy', from: 0 }])).get('s-copy')!;
    expect(records.map((r) => r.q)).toEqual(copy.slice(1).map((e) => e.seq));
    // Turns 2-11 name the original's records; the last, which differs, is stored whole.
    const stored = await rows('s-copy');
    expect(stored.map((r) => r.format)).toEqual([...Array(10).fill(5), 4]);
    const own = await rows('s-orig');
    expect(stored.slice(0, 10).reduce((s, r) => s + r.zt, 0)).toBeLessThan(own.slice(0, 10).reduce((s, r) => s + r.zt, 0) / 5);
  });

  it('fails a read with AO_STORE_CORRUPT when the records it names are gone, and a reader of formats 2-4 refuses a format-5 row', async () => {
    await newRun('c-orig');
    await converse('c-orig', 4);
    await newRun('c-copy', 'c-orig');
    await converse('c-copy', 4, 'c-orig');
    await pg.client.query("delete from journal where run_id = 'c-orig'");
    await expect(open().listEvents('c-copy', { limit: 100 })).rejects.toMatchObject({ code: 'AO_STORE_CORRUPT' });
    const row = { runId: 'x', seq: 1, lastSeq: 1, format: 6, ids: ['00000000-0000-4000-8000-000000000000'], time: new Date().toISOString(), body: '[]' };
    expect(() => unpackRow(row)).toThrow(/format 6 \(this code reads formats 2 to 5\)/);
  });
});
