import { describe, expect, it } from 'vitest';
import type { Envelope } from '../envelope/mod.js';
import { journalRowsJson, unpackRow, unpackRows } from './journal-format.js';
import type { JournalRow, JournalRowIn } from './journal-format.js';

const T0 = Date.parse('2026-12-04T10:00:00.000Z');
const trace = (n: number) => ({ traceparent: `00-${'a'.repeat(32)}-${String(n).padStart(16, '0')}-01` });
const id = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

function env(runId: string, seq: number, o: Partial<Envelope> = {}): Envelope {
  return {
    id: id(seq),
    runId,
    seq,
    type: 'node.start',
    from: 'supervisor',
    to: 'supervisor/a',
    payload: { seq, text: 'é\u2028"' },
    causationId: null,
    trace: trace(1),
    time: new Date(T0 + seq * 7).toISOString(),
    ...o,
  } as Envelope;
}

/** What the store gives back for the rows the insert statement would write. */
const rowsOf = (envelopes: Envelope[]): JournalRow[] =>
  (JSON.parse(journalRowsJson(envelopes)) as Array<JournalRowIn & { body: unknown }>).map((r) => ({
    runId: r.run_id,
    seq: r.seq,
    lastSeq: r.last_seq,
    format: r.format,
    ids: r.ids,
    time: r.time,
    body: JSON.stringify(r.body),
  }));

describe('journal rows (log format 2)', () => {
  it('packs the envelopes of a commit into one row and unpacks them exactly: causations inside and outside it, trace changes, a gap in seqs', () => {
    const list = [
      env('r', 4, { causationId: id(1) }),
      env('r', 5, { causationId: id(4), trace: null }),
      env('r', 6, { causationId: id(5), trace: trace(2), payload: undefined }),
      env('r', 9, { causationId: null, trace: trace(2), type: 'budget.granted', from: 'supervisor/budget' as Envelope['from'] }),
      env('r', 10, { trace: trace(2), time: new Date(T0 - 5).toISOString() }),
    ];
    const rows = rowsOf(list);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ seq: 4, lastSeq: 10, ids: list.map((e) => e.id) });
    expect(unpackRow(rows[0]!)).toEqual(list.map((e) => ({ ...e, payload: e.payload ?? null })));
    expect(unpackRows(rows, 5, 9).map((e) => e.seq)).toEqual([6, 9]);
  });

  it('writes one row per run of the envelopes given, each in seq order', () => {
    const rows = rowsOf([env('b', 2), env('a', 1), env('b', 1)]);
    expect(rows.map((r) => [r.runId, r.seq, r.lastSeq])).toEqual([
      ['b', 1, 2],
      ['a', 1, 1],
    ]);
    expect(unpackRow(rows[0]!).map((e) => e.seq)).toEqual([1, 2]);
  });

  it('refuses a row it cannot read with AO_STORE_CORRUPT: another format, a body that does not match its ids, a bad envelope', () => {
    const [row] = rowsOf([env('r', 1), env('r', 2)]);
    expect(() => unpackRow({ ...row!, format: 9 })).toThrow(expect.objectContaining({ code: 'AO_STORE_CORRUPT' }));
    expect(() => unpackRow({ ...row!, ids: [id(1)] })).toThrow(expect.objectContaining({ code: 'AO_STORE_CORRUPT' }));
    expect(() => unpackRow({ ...row!, body: '[["NOT A TYPE","supervisor","x",null,0,null],["node.start","supervisor","x",null,0,null]]' })).toThrow(
      expect.objectContaining({ code: 'AO_STORE_CORRUPT' }),
    );
  });
});
