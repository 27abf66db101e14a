/**
 * `pnpm --filter @ao/bench bench:w6-anatomy [turns]` (default 100): where W6's stored bytes go, on
 * ours (Postgres, no NATS: the bus does not change what is stored). One conversation of `turns`
 * turns on a scratch database, then, per table, its rows and `pg_column_size` bytes, and per
 * envelope type the bytes of its packed JSON in the journal bodies (as stored, before Postgres
 * compresses the row) and of the contents it references, each also per turn.
 */
import { createHash } from 'node:crypto';
import { anatomy, journalBodies, printByType } from './anatomy.js';
import { psql } from './compare/db.js';
import { uniqueContentBytes } from './compare/conversation.js';

async function main(): Promise<void> {
  const turns = Number(process.argv[2] ?? '100');
  await anatomy(
    { w6Turns: turns },
    (s) => s.conversation(turns),
    turns,
    'turn',
    ({ total, per }) =>
      `W6, ${turns} turns: ${total.rowBytes} row bytes stored (${per(total.rowBytes)} a turn), unique content ${uniqueContentBytes(turns)} (stored / unique ${(total.rowBytes / uniqueContentBytes(turns)).toFixed(2)})`,
    async ({ url, per }) => {
      const { bodies, zBody, zTurns, rawTurns } = await journalBodies(url);
      console.log(
        `\njournal: bodies deflated ${zBody} B (${per(zBody)} B/turn), turn records ${rawTurns} B as JSON, deflated ${zTurns} B (${per(zTurns)} B/turn)`,
      );
      printByType(bodies, per, 'turn');
      const contents = await psql(url, `select count(*), coalesce(sum(length(body)), 0) from contents`).catch(() => [['0', '0']]);
      console.log(`\ncontents: ${contents[0]![0]} rows, ${contents[0]![1]} characters of body`);
      const cps = await psql(url, `select count(*), coalesce(sum(size_bytes), 0) from checkpoints`);
      console.log(`checkpoints: ${cps[0]![0]} rows, ${cps[0]![1]} bytes of state JSON`);
      const run = await psql(url, `select length(output::text), length(nodes::text) from runs`);
      console.log(`run row: output ${run[0]![0]} characters, nodes ${run[0]![1]} characters`);
      console.log(`(fingerprint of the bodies: ${createHash('sha1').update(bodies.join('\n')).digest('hex').slice(0, 12)})`);
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
