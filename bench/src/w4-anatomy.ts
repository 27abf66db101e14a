/**
 * `pnpm --filter @ao/bench bench:w4-anatomy [steps]` (default 100): where W4's stored bytes go, on
 * ours (Postgres, no NATS: the bus does not change what is stored). One loop run of `steps` node
 * executions on a scratch database, then, per table, its rows and `pg_column_size` bytes, and per
 * envelope type the bytes of its packed JSON in the journal bodies (before Postgres compresses the
 * row), each also per step.
 */
import { unzipText } from '@ao/runtime';
import { journalBodies, printByType } from './anatomy.js';
import { psql, statsDelta, tableStats, totalOf } from './compare/db.js';
import { openOurs } from './compare/ours.js';
import { createScratchDatabase } from './postgres.js';

async function main(): Promise<void> {
  const steps = Number(process.argv[2] ?? '100');
  const db = await createScratchDatabase();
  if (!db.ok) throw new Error(db.reason);
  try {
    const s = await openOurs({ dbUrl: db.url, loopSteps: steps });
    const before = await tableStats(db.url);
    await s.loop(steps);
    await s.close();
    const written = statsDelta(before, await tableStats(db.url));
    const total = totalOf(written);
    const per = (n: number) => (n / steps).toFixed(0).padStart(8);
    console.log(`W4, ${steps} steps: ${total.rows} rows, ${total.rowBytes} row bytes stored (${per(total.rowBytes)} a step)`);
    console.log('\nby table (rows, row bytes after compression, a step):');
    for (const [t, x] of Object.entries(written)) console.log(`  ${t.padEnd(22)} ${String(x.rows).padStart(6)} rows ${String(x.rowBytes).padStart(10)} B ${per(x.rowBytes)} B/step`);
    const cols = await psql(db.url, `select coalesce(sum(pg_column_size(body)),0), coalesce(sum(pg_column_size(packed)),0), coalesce(sum(pg_column_size(ids)),0), coalesce(sum(pg_column_size(j.*)),0) from journal j`);
    console.log(`journal columns: body ${cols[0]![0]} B, packed ${cols[0]![1]} B, ids ${cols[0]![2]} B, whole rows ${cols[0]![3]} B`);
    const { bodies } = await journalBodies(db.url);
    printByType(bodies, per, 'step');
    const cps = await psql(db.url, `select count(*), coalesce(sum(size_bytes), 0), coalesce(sum(pg_column_size(c.*)),0) from checkpoints c`);
    console.log(`\ncheckpoints: ${cps[0]![0]} rows, ${cps[0]![1]} bytes of state JSON, ${cps[0]![2]} B as stored`);
    console.log('\ntwo journal rows from the middle of the run:');
    for (const b of bodies.slice(Math.floor(bodies.length / 2), Math.floor(bodies.length / 2) + 2)) console.log(b);
    const cp = await psql(db.url, `select state::text, translate(encode(zstate, 'base64'), E'\n', '') from checkpoints order by step offset ${Math.floor(steps / 2)} limit 1`);
    console.log('\na checkpoint from the middle of the run:');
    console.log(cp[0]?.[1] ? unzipText(Buffer.from(cp[0][1], 'base64')) : cp[0]?.[0]);
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
