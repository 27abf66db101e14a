import { describe, expect, it } from 'vitest';
import type { Envelope } from '../envelope/mod.js';
import { deflateText, dictionaryRowsOf, DICTIONARY_BYTES, DICTIONARY_ROWS, inflateText, RowDictionaries, RowZipper } from './journal-zip.js';
import { pgliteStores } from '../testing/raw-pglite.js';
import { seededWords } from '../testing/words.js';

const words = seededWords;

describe('deflated journal rows (log format 4)', () => {
  it('gives back the text exactly, with the base dictionary alone and against earlier rows', () => {
    const text = `[["llm.request","supervisor/agent","llm/default",null,0,{"key":"supervisor/agent/3","text":"é\u2028\\"${words(1, 500)}"}]]`;
    const alone = deflateText(text);
    expect(dictionaryRowsOf(alone)).toBeUndefined();
    expect(inflateText(alone, undefined, 'row')).toBe(text);
    const rows = { from: 2, to: 6, text: words(2, 3000) + text.slice(0, 200) };
    const against = deflateText(text, rows);
    expect(dictionaryRowsOf(against)).toEqual({ from: 2, to: 6 });
    expect(inflateText(against, rows, 'row')).toBe(text);
    // The run's own earlier text is what makes it smaller.
    expect(against.length).toBeLessThan(alone.length);
  });

  it('refuses to read a row against rows other than the ones it was written against, or a damaged one (AO_STORE_CORRUPT)', () => {
    const rows = { from: 1, to: 3, text: words(3, 2000) };
    const z = deflateText('some text of a row', rows);
    expect(() => inflateText(z, undefined, 'row 9')).toThrow(expect.objectContaining({ code: 'AO_STORE_CORRUPT' }));
    expect(() => inflateText(z, { ...rows, to: 4 }, 'row 9')).toThrow(expect.objectContaining({ code: 'AO_STORE_CORRUPT' }));
    expect(() => inflateText(z, { ...rows, text: `${rows.text}.` }, 'row 9')).toThrow(/another text/);
    expect(() => inflateText(Buffer.of(7, 1, 2), undefined, 'row 9')).toThrow(/kind 7/);
    expect(() => inflateText(Buffer.of(1, 0xff, 0xff, 0xff), undefined, 'row 9')).toThrow(expect.objectContaining({ code: 'AO_STORE_CORRUPT' }));
  });

  it("takes a run's first rows as its dictionary once their text is long enough, each deflated against those before it, and only rows whose commit landed", () => {
    const dicts = new RowDictionaries();
    const first = new RowZipper(dicts);
    first.zip('r', 1, words(4, 1000), undefined);
    // Not landed (the commit failed): nothing known.
    expect(dicts.get('r')).toBeUndefined();
    expect(dicts.gathered('r')).toBeUndefined();
    const texts: string[] = [];
    for (let seq = 1; dicts.get('r') === undefined; seq += 2) {
      const z = new RowZipper(dicts);
      const body = words(seq, 1000);
      const records = seq > 1 ? words(seq + 1, 500) : undefined;
      const out = z.zip('r', seq, body, records, seq + 1);
      const zb = Buffer.from(out.z, 'base64');
      // The first row against the base dictionary alone (kind 1); the next ones against the rows gathered before them (kind 3).
      expect(zb[0]).toBe(seq === 1 ? 1 : 3);
      expect(dictionaryRowsOf(zb)).toEqual(seq === 1 ? undefined : { from: 1, to: seq - 2 });
      const before = seq === 1 ? undefined : { from: 1, to: seq - 2, text: texts.join('\n') };
      expect(inflateText(zb, before, 'row')).toBe(body);
      z.landed();
      texts.push(records === undefined ? body : `${body}\n${records}`);
    }
    const known = dicts.get('r')!;
    expect(known.from).toBe(1);
    expect(known.text).toBe(texts.join('\n'));
    expect(Buffer.byteLength(known.text)).toBeGreaterThanOrEqual(DICTIONARY_BYTES);
    const next = new RowZipper(dicts).zip('r', 99, 'next', 'records');
    expect(Buffer.from(next.z, 'base64')[0]).toBe(4);
    expect(dictionaryRowsOf(Buffer.from(next.z, 'base64'))).toEqual({ from: known.from, to: known.to });
    expect(inflateText(Buffer.from(next.zt!, 'base64'), known, 'row')).toBe('records');
  });

  it('ends a dictionary of many small rows at DICTIONARY_ROWS rows', () => {
    const dicts = new RowDictionaries();
    for (let seq = 1; seq <= DICTIONARY_ROWS; seq++) {
      expect(dicts.get('s')).toBeUndefined();
      const z = new RowZipper(dicts);
      z.zip('s', seq, `[${seq}]`, undefined);
      z.landed();
    }
    expect(dicts.get('s')).toMatchObject({ from: 1, to: DICTIONARY_ROWS });
  });

  it('ends a dictionary at a row that lands after a gap or out of seq order, so its rows are every row of their range', () => {
    const dicts = new RowDictionaries();
    const land = (seq: number, last: number) => {
      const z = new RowZipper(dicts);
      const out = z.zip('g', seq, `[${seq}]`, undefined, last);
      z.landed();
      return Buffer.from(out.z, 'base64');
    };
    land(1, 4);
    land(5, 6);
    expect(dicts.gathered('g')).toMatchObject({ from: 1, to: 5 });
    // Seqs 7-8 are another commit's, not landed here yet: the row at 9 ends the dictionary (only a run's first row starts one).
    land(9, 9);
    expect(dicts.gathered('g')).toBeUndefined();
    land(7, 8);
    expect(dicts.gathered('g')).toBeUndefined();
    expect(dictionaryRowsOf(land(10, 10))).toBeUndefined();
    // A row with a gap in its seqs (NaN: another commit's envelopes between them) ends it too.
    land(1, 1);
    land(2, NaN);
    land(3, 3);
    expect(dicts.gathered('g')).toBeUndefined();
  });
});

describe('a store writes its rows deflated and reads them back in any process', () => {
  const pg = pgliteStores();
  const open = () => pg.open();

  let n = 0;
  const seqs = new Map<string, number>();
  const env = (runId: string, type: string, from: string, payload: unknown): Envelope =>
    ({
      id: `00000000-0000-4000-8000-${String(++n).padStart(12, '0')}`,
      runId,
      seq: seqs.set(runId, (seqs.get(runId) ?? 0) + 1).get(runId)!,
      type,
      from,
      to: 'supervisor/budget',
      payload,
      causationId: null,
      trace: null,
      time: new Date().toISOString(),
    }) as Envelope;

  it('stores a long run in less than its text, deflated against its first rows, and a fresh store reads any part of it', async () => {
    const writer = open();
    await writer.createRun({ id: 'z-1', graph: 'g', graphVersion: 'v', input: {}, budget: {}, nodes: {}, traceId: null, owner: 'n1', leaseMs: 60_000 });
    const written: Envelope[] = [];
    for (let i = 1; i <= 40; i++) {
      const batch = [
        env('z-1', 'budget.request', 'supervisor/agent', {
          kind: 'tool',
          key: `supervisor/agent/${i}`,
          node: 'agent',
          actor: 'supervisor/agent',
          tool: 'read_page',
        }),
        env('z-1', 'node.progress', 'supervisor/agent', { key: `supervisor/agent/${i}`, text: words(i, 300) }),
      ];
      written.push(...batch);
      await writer.commit({ runId: 'z-1', events: batch, owner: 'n1' });
    }
    const rows = await pg.client.query<{ format: number; body: unknown; z: string; stored: number }>(
      "select format, body, encode(packed, 'base64') as z, octet_length(packed) as stored from journal where run_id = 'z-1' order by seq",
    );
    expect(rows.rows.every((r) => r.format === 4 && r.body === null)).toBe(true);
    const kinds = rows.rows.map((r) => Buffer.from(r.z, 'base64')[0]);
    // Its first rows are its dictionary, each deflated against those before it; the rest are deflated against them all.
    expect(kinds[0]).toBe(1);
    expect(kinds.indexOf(4)).toBeGreaterThan(1);
    expect(kinds.slice(1, kinds.indexOf(4)).every((k) => k === 3)).toBe(true);
    expect(kinds.slice(kinds.indexOf(4)).every((k) => k === 4)).toBe(true);
    const text = written.reduce((n, e) => n + JSON.stringify(e.payload).length, 0);
    expect(rows.rows.reduce((n, r) => n + Number(r.stored), 0)).toBeLessThan(text * 0.8);

    const reader = open();
    expect(await reader.eventsAfter([{ runId: 'z-1', after: 60 }])).toEqual(new Map([['z-1', written.slice(60)]]));
    expect(await reader.listEvents('z-1', { limit: 1_000 })).toEqual(written);
    expect(await open().getEvents('z-1', [written[77]!.id])).toEqual([written[77]]);
    // A fresh reader of a dictionary row alone, of one in the middle of them, and of the rows after them.
    const dictRows = kinds.indexOf(4);
    expect(await open().getEvents('z-1', [written[0]!.id])).toEqual([written[0]]);
    expect(await open().getEvents('z-1', [written[dictRows]!.id])).toEqual([written[dictRows]]);
    expect(await open().listEvents('z-1', { after: dictRows, limit: 1_000 })).toEqual(written.slice(dictRows));
  });

  it('reads a run whose dictionary rows were each deflated alone, as the code before 2026-12-06 wrote them', async () => {
    const writer = open();
    await writer.createRun({ id: 'z-3', graph: 'g', graphVersion: 'v', input: {}, budget: {}, nodes: {}, traceId: null, owner: 'n1', leaseMs: 60_000 });
    const written: Envelope[] = [];
    for (let i = 1; i <= 30; i++) {
      const e = env('z-3', 'node.progress', 'supervisor/agent', { key: `supervisor/agent/${i}`, text: words(200 + i, 900) });
      written.push(e);
      await writer.commit({ runId: 'z-3', events: [e], owner: 'n1' });
    }
    // Each dictionary row (kind 3) rewritten as the code before wrote it: deflated against the base dictionary alone (kind 1), and the rows after them as kind 2.
    // Rows of one envelope each (row i holds written[i]), and a row's JSON text holds no newline.
    const first = written[0]!.seq;
    const all = await (open() as unknown as { dictionaryOf(run: string, f: number, t: number, d: number): Promise<{ text: string }> }).dictionaryOf(
      'z-3',
      first,
      written.at(-1)!.seq,
      0,
    );
    const texts = all.text.split('\n');
    expect(texts).toHaveLength(30);
    const rows = await pg.client.query<{ seq: number; z: string }>("select seq, encode(packed, 'base64') as z from journal where run_id = 'z-3' order by seq");
    let rewritten = 0;
    for (const r of rows.rows) {
      const z = Buffer.from(r.z, 'base64');
      if (z[0] === 1) continue;
      // The rows after them as that code wrote them too: against all of the dictionary rows' text (kind 2).
      const named = dictionaryRowsOf(z)!;
      const old =
        z[0] === 3
          ? deflateText(texts[r.seq - first]!)
          : deflateText(texts[r.seq - first]!, { ...named, text: texts.slice(named.from - first, named.to - first + 1).join('\n') }, 2);
      await pg.client.query("update journal set packed = decode($1, 'base64') where run_id = 'z-3' and seq = $2", [old.toString('base64'), r.seq]);
      rewritten += z[0] === 3 ? 1 : 0;
    }
    expect(rewritten).toBeGreaterThan(1);
    const fresh = open();
    expect(await fresh.listEvents('z-3', { limit: 1_000 })).toEqual(written);
    expect(await open().listEvents('z-3', { after: written[19]!.seq, limit: 1_000 })).toEqual(written.slice(20));
  });

  it('reads a row written against rows it cannot find as AO_STORE_CORRUPT, not as other text', async () => {
    const writer = open();
    await writer.createRun({ id: 'z-2', graph: 'g', graphVersion: 'v', input: {}, budget: {}, nodes: {}, traceId: null, owner: 'n1', leaseMs: 60_000 });
    for (let i = 1; i <= 12; i++)
      await writer.commit({ runId: 'z-2', events: [env('z-2', 'node.progress', 'supervisor/agent', { text: words(100 + i, 600) })], owner: 'n1' });
    await pg.client.query("delete from journal where run_id = 'z-2' and seq = (select min(seq) from journal where run_id = 'z-2')");
    await expect(open().listEvents('z-2', { limit: 100 })).rejects.toMatchObject({ code: 'AO_STORE_CORRUPT' });
  });
});
