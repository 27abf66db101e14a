/** What the anatomy commands (`bench:w4-anatomy`, `bench:w6-anatomy`) read of a scratch database's journal. */
import { dictionaryRowsOf, inflateText, rowText } from '@ao/runtime';
import { psql, statsDelta, tableStats, totalOf } from './compare/db.js';
import type { TableStats } from './compare/db.js';
import { openOurs } from './compare/ours.js';
import type { BenchSystem, OpenOptions } from './compare/system.js';
import { createScratchDatabase } from './postgres.js';

/** What one piece of work wrote: the scratch database it wrote to, the whole, and a figure per unit of work. */
export interface Written {
  url: string;
  total: TableStats;
  per: (bytes: number) => string;
}

/**
 * Ours on a scratch database (Postgres, no NATS: the bus does not change what is stored): `work`
 * runs, then its headline and what each table gained, `n` units (steps, turns) of it; `report`
 * reads on before the database is dropped.
 */
export async function anatomy(
  o: OpenOptions,
  work: (s: BenchSystem) => Promise<unknown>,
  n: number,
  unit: string,
  headline: (w: Written) => string,
  report: (w: Written) => Promise<void>,
): Promise<void> {
  const db = await createScratchDatabase();
  if (!db.ok) throw new Error(db.reason);
  try {
    const s = await openOurs({ ...o, dbUrl: db.url });
    const before = await tableStats(db.url);
    await work(s);
    await s.close();
    const written = statsDelta(before, await tableStats(db.url));
    const w: Written = { url: db.url, total: totalOf(written), per: (bytes) => (bytes / n).toFixed(0).padStart(8) };
    console.log(headline(w));
    console.log(`\nby table (rows, row bytes after compression, a ${unit}):`);
    for (const [t, x] of Object.entries(written))
      console.log(`  ${t.padEnd(22)} ${String(x.rows).padStart(6)} rows ${String(x.rowBytes).padStart(10)} B ${w.per(x.rowBytes)} B/${unit}`);
    await report(w);
  } finally {
    await db.drop();
  }
}

export interface JournalBodies {
  /** Each row's body as JSON (a deflated row, format 4, inflated against the rows it names). */
  bodies: string[];
  /** Bytes of the deflated bodies and turn records, and of the turn records as JSON. */
  zBody: number;
  zTurns: number;
  rawTurns: number;
}

/** The journal's rows, in seq order, their bodies as JSON. */
export async function journalBodies(url: string): Promise<JournalBodies> {
  const stored = await psql(
    url,
    `select seq, coalesce(body::text, ''), coalesce(turns::text, ''), coalesce(translate(encode(packed, 'base64'), E'\\n', ''), ''), coalesce(translate(encode(packed_turns, 'base64'), E'\\n', ''), ''), coalesce(octet_length(packed), 0), coalesce(octet_length(packed_turns), 0), coalesce(octet_length(turns::text), 0) from journal order by seq`,
  );
  const texts = new Map<number, string>();
  const unzip = (b64: string, seq: number) => {
    const z = Buffer.from(b64, 'base64');
    const d = dictionaryRowsOf(z);
    const dict = d && {
      ...d,
      text: [...texts]
        .filter(([s]) => s >= d.from && s <= d.to)
        .map(([, t]) => t)
        .join('\n'),
    };
    return inflateText(z, dict, `row ${seq}`);
  };
  const out: JournalBodies = { bodies: [], zBody: 0, zTurns: 0, rawTurns: 0 };
  for (const [seq, body, , z, zt, zb, ztb, tb] of stored) {
    if (!z) {
      out.rawTurns += Number(tb);
      out.bodies.push(body!);
      continue;
    }
    const text = unzip(z, Number(seq));
    const records = zt ? unzip(zt, Number(seq)) : '';
    texts.set(Number(seq), rowText(text, records || undefined));
    out.zBody += Number(zb);
    out.zTurns += Number(ztb);
    out.rawTurns += Buffer.byteLength(records);
    out.bodies.push(text);
  }
  return out;
}

/** Each envelope type's bytes of packed JSON in the bodies (before the row's compression), `per` a step or turn. */
export function printByType(bodies: readonly string[], per: (n: number) => string, unit: string): void {
  const byType = new Map<string, { n: number; bytes: number }>();
  for (const body of bodies) {
    for (const p of JSON.parse(body) as unknown[][]) {
      const t = String(p[0]);
      const x = byType.get(t) ?? { n: 0, bytes: 0 };
      x.n++;
      x.bytes += Buffer.byteLength(JSON.stringify(p));
      byType.set(t, x);
    }
  }
  console.log('\njournal bodies by envelope type (packed JSON before row compression):');
  let sum = 0;
  for (const [t, x] of [...byType].sort((a, b) => b[1].bytes - a[1].bytes)) {
    sum += x.bytes;
    console.log(`  ${t.padEnd(22)} ${String(x.n).padStart(6)} envelopes ${String(x.bytes).padStart(10)} B ${per(x.bytes)} B/${unit}`);
  }
  console.log(`  ${'all'.padEnd(22)} ${''.padStart(16)} ${String(sum).padStart(10)} B ${per(sum)} B/${unit}`);
}
