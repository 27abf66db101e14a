/**
 * `pnpm --filter @ao/bench bench:w6-anatomy [turns]` (default 100): where W6's stored bytes go, on
 * ours (Postgres, no NATS: the bus does not change what is stored). One conversation of `turns`
 * turns on a scratch database, then, per table, its rows and `pg_column_size` bytes, and per
 * envelope type the bytes of its packed JSON in the journal bodies (as stored, before Postgres
 * compresses the row) and of the contents it references, each also per turn.
 */
import { createHash } from 'node:crypto';
import { journalBodies, printByType } from './anatomy.js';
import { psql, statsDelta, tableStats, totalOf } from './compare/db.js';
import { uniqueContentBytes } from './compare/conversation.js';
import { openOurs } from './compare/ours.js';
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
    const { bodies, zBody, zTurns, rawTurns } = await journalBodies(db.url);
    console.log(`\njournal: bodies deflated ${zBody} B (${per(zBody)} B/turn), turn records ${rawTurns} B as JSON, deflated ${zTurns} B (${per(zTurns)} B/turn)`);
    printByType(bodies, per, 'turn');
    const contents = await psql(db.url, `select count(*), coalesce(sum(length(body)), 0) from contents`).catch(() => [['0', '0']]);
    console.log(`\ncontents: ${contents[0]![0]} rows, ${contents[0]![1]} characters of body`);
    const cps = await psql(db.url, `select count(*), coalesce(sum(size_bytes), 0) from checkpoints`);
    console.log(`checkpoints: ${cps[0]![0]} rows, ${cps[0]![1]} bytes of state JSON`);
    const run = await psql(db.url, `select length(output::text), length(nodes::text) from runs`);
    console.log(`run row: output ${run[0]![0]} characters, nodes ${run[0]![1]} characters`);
    console.log(`(fingerprint of the bodies: ${createHash('sha1').update(bodies.join('\n')).digest('hex').slice(0, 12)})`);
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
