/**
 * `pnpm --filter @ao/bench bench:w6-anatomy [turns]` (default 100): where W6's stored bytes go, on
 * ours (Postgres, no NATS: the bus does not change what is stored). One conversation of `turns`
 * turns on a scratch database, then, per table, its rows and `pg_column_size` bytes, and per
 * envelope type the bytes of its packed JSON in the journal bodies (as stored, before Postgres
 * compresses the row) and of the contents it references, each also per turn.
 */
import { createHash } from 'node:crypto';
import { psql, statsDelta, tableStats, totalOf } from './compare/db.js';
import { uniqueContentBytes } from './compare/conversation.js';
import { openOurs } from './compare/ours.js';
import { dictionaryRowsOf, inflateText, rowText } from '@ao/runtime';
import { createScratchDatabase } from './postgres.js';

async function main(): Promise<void> {
  const turns = Number(process.argv[2] ?? '100');
  const db = await createScratchDatabase();
  if (!db.ok) throw new Error(db.reason);
  try {
    const s = await openOurs({ dbUrl: db.url, w6Turns: turns });
    const before = await tableStats(db.url);
    await s.conversation(turns);
    await s.close();
    const written = statsDelta(before, await tableStats(db.url));
    const total = totalOf(written);
    const per = (n: number) => (n / turns).toFixed(0).padStart(8);
    console.log(`W6, ${turns} turns: ${total.rowBytes} row bytes stored (${per(total.rowBytes)} a turn), unique content ${uniqueContentBytes(turns)} (stored / unique ${(total.rowBytes / uniqueContentBytes(turns)).toFixed(2)})`);
    console.log('\nby table (rows, row bytes after compression, a turn):');
    for (const [t, x] of Object.entries(written)) console.log(`  ${t.padEnd(22)} ${String(x.rows).padStart(6)} rows ${String(x.rowBytes).padStart(10)} B ${per(x.rowBytes)} B/turn`);
    // Each envelope's packed JSON in its row's body, by type (a deflated row, format 4, inflated).
    const stored = await psql(db.url, `select seq, coalesce(body::text, ''), coalesce(turns::text, ''), coalesce(translate(encode(packed, 'base64'), E'\n', ''), ''), coalesce(translate(encode(packed_turns, 'base64'), E'\n', ''), ''), coalesce(octet_length(packed), 0), coalesce(octet_length(packed_turns), 0), coalesce(octet_length(turns::text), 0) from journal order by seq`);
    const texts = new Map<number, string>();
    const unzip = (b64: string, seq: number) => {
      const z = Buffer.from(b64, 'base64');
      const d = dictionaryRowsOf(z);
      const dict = d && { ...d, text: [...texts].filter(([s]) => s >= d.from && s <= d.to).map(([, t]) => t).join('\n') };
      return inflateText(z, dict, `row ${seq}`);
    };
    let zBody = 0;
    let zTurns = 0;
    let rawTurns = 0;
    const rows = stored.map(([seq, body, , z, zt, zb, ztb, tb]) => {
      if (!z) {
        rawTurns += Number(tb);
        return [body!];
      }
      const text = unzip(z, Number(seq));
      const records = zt ? unzip(zt, Number(seq)) : '';
      texts.set(Number(seq), rowText(text, records || undefined));
      zBody += Number(zb);
      zTurns += Number(ztb);
      rawTurns += Buffer.byteLength(records);
      return [text];
    });
    console.log(`\njournal: bodies deflated ${zBody} B (${per(zBody)} B/turn), turn records ${rawTurns} B as JSON, deflated ${zTurns} B (${per(zTurns)} B/turn)`);
    const byType = new Map<string, { n: number; bytes: number }>();
    for (const [body] of rows) {
      for (const p of JSON.parse(body!) as unknown[][]) {
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
      console.log(`  ${t.padEnd(22)} ${String(x.n).padStart(6)} envelopes ${String(x.bytes).padStart(10)} B ${per(x.bytes)} B/turn`);
    }
    console.log(`  ${'all'.padEnd(22)} ${''.padStart(16)} ${String(sum).padStart(10)} B ${per(sum)} B/turn`);
    const contents = await psql(db.url, `select count(*), coalesce(sum(length(body)), 0) from contents`).catch(() => [['0', '0']]);
    console.log(`\ncontents: ${contents[0]![0]} rows, ${contents[0]![1]} characters of body`);
    const cps = await psql(db.url, `select count(*), coalesce(sum(size_bytes), 0) from checkpoints`);
    console.log(`checkpoints: ${cps[0]![0]} rows, ${cps[0]![1]} bytes of state JSON`);
    const run = await psql(db.url, `select length(output::text), length(nodes::text) from runs`);
    console.log(`run row: output ${run[0]![0]} characters, nodes ${run[0]![1]} characters`);
    console.log(`(fingerprint of the bodies: ${createHash('sha1').update(rows.map((r) => r[0]).join('\n')).digest('hex').slice(0, 12)})`);
  } finally {
    await db.drop();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
