/**
 * `pnpm --filter @ao/bench bench:w4-anatomy [steps]` (default 100): where W4's stored bytes go, on
 * ours (Postgres, no NATS: the bus does not change what is stored). One loop run of `steps` node
 * executions on a scratch database, then, per table, its rows and `pg_column_size` bytes, and per
 * envelope type the bytes of its packed JSON in the journal bodies (before Postgres compresses the
 * row), each also per step.
 */
import { stateBase, stateBaseOf, unzipState, unzipStateAgainst } from '@ao/runtime';
import { anatomy, journalBodies, printByType } from './anatomy.js';
import { psql } from './compare/db.js';

async function main(): Promise<void> {
  const steps = Number(process.argv[2] ?? '100');
  await anatomy(
    { loopSteps: steps },
    (s) => s.loop(steps),
    steps,
    'step',
    ({ total, per }) => `W4, ${steps} steps: ${total.rows} rows, ${total.rowBytes} row bytes stored (${per(total.rowBytes)} a step)`,
    async ({ url, per }) => {
      const cols = await psql(
        url,
        `select coalesce(sum(pg_column_size(body)),0), coalesce(sum(pg_column_size(packed)),0), coalesce(sum(pg_column_size(ids)),0), coalesce(sum(pg_column_size(j.*)),0) from journal j`,
      );
      console.log(`journal columns: body ${cols[0]![0]} B, packed ${cols[0]![1]} B, ids ${cols[0]![2]} B, whole rows ${cols[0]![3]} B`);
      const { bodies } = await journalBodies(url);
      printByType(bodies, per, 'step');
      const cps = await psql(url, `select count(*), coalesce(sum(size_bytes), 0), coalesce(sum(pg_column_size(c.*)),0) from checkpoints c`);
      console.log(`\ncheckpoints: ${cps[0]![0]} rows, ${cps[0]![1]} bytes of state JSON, ${cps[0]![2]} B as stored`);
      const cc = await psql(
        url,
        `select coalesce(sum(pg_column_size(run_id)),0), coalesce(sum(pg_column_size(node)),0), coalesce(sum(pg_column_size(graph_version)),0), coalesce(sum(pg_column_size(zstate)),0), coalesce(sum(pg_column_size(state)),0) from checkpoints`,
      );
      console.log(`checkpoint columns: run_id ${cc[0]![0]} B, node ${cc[0]![1]} B, graph_version ${cc[0]![2]} B, zstate ${cc[0]![3]} B, state ${cc[0]![4]} B`);
      const jc = await psql(url, `select coalesce(sum(pg_column_size(run_id)),0), coalesce(sum(pg_column_size(time)),0) from journal`);
      console.log(`journal run_id ${jc[0]![0]} B, time ${jc[0]![1]} B`);
      console.log('\ntwo journal rows from the middle of the run:');
      for (const b of bodies.slice(Math.floor(bodies.length / 2), Math.floor(bodies.length / 2) + 2)) console.log(b);
      // A keyframe (deflated alone) from the middle of the run, and the state after it (deflated against it).
      const cp = await psql(
        url,
        `select step, state::text, translate(encode(zstate, 'base64'), E'\n', '') from checkpoints where get_byte(zstate, 0) <> 254 order by step offset ${Math.floor(steps / 32)} limit 1`,
      );
      const key = cp[0]?.[2] ? unzipState(Buffer.from(cp[0][2], 'base64')) : cp[0]?.[1];
      console.log(`\na checkpoint from the middle of the run (step ${cp[0]?.[0]}, a keyframe):`);
      console.log(key);
      const next = await psql(url, `select translate(encode(zstate, 'base64'), E'\n', '') from checkpoints where step = ${Number(cp[0]?.[0]) + 1}`);
      const z = next[0]?.[0] ? Buffer.from(next[0][0], 'base64') : undefined;
      if (key && z && stateBaseOf(z) !== undefined)
        console.log(`the next one, ${z.length} B deflated against it:\n${unzipStateAgainst(z, stateBase(Number(cp[0]![0]), key), 'next')}`);
    },
  );
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
