/**
 * `pnpm --filter @ao/bench bench:w6-fork [turns...]` (default 100 1000): the bytes a replay or a
 * fork of a W6 conversation stores (issue 22). For each length a conversation runs to its end on a
 * scratch Postgres database (in process, no NATS: the bus does not change what is stored), then,
 * one after the other, each of these is made of it and the rows and `pg_column_size` bytes every
 * table gained are counted (firm counts, no timing):
 *
 * - a recorded replay from step 0 (every turn runs again, served from the original);
 * - a live fork from step 0 (a budget override: every turn runs again, made anew by the stand-in);
 * - a live fork from the last step a fork can start from (the one before the run's end).
 *
 * W6's graph is one agent node, so its checkpoints are at the run's start (step 1, the agent live)
 * and its end: every replay or fork of it runs the whole conversation again, and a checkpoint in
 * the middle of the conversation does not exist (a replay does not restore an agent's resume
 * points), so no fork can start there.
 */
import { z } from 'zod';
import { Engine } from '@ao/actors';
import { builtinTools, defineTool, InProcessBus, openPgStore, ToolRegistry } from '@ao/runtime';
import type { Store } from '@ao/runtime';
import { pageResult, uniqueContentBytes, W6_TOOL, w6User } from './compare/conversation.js';
import { conversationGraph, conversationName, ConversationLlm } from './compare/ours.js';
import { psql, statsDelta, tableStats, totalOf } from './compare/db.js';
import type { TableStats } from './compare/db.js';
import { createScratchDatabase } from './postgres.js';

const readPage = defineTool({
  name: W6_TOOL,
  description: 'Read one page (W6).',
  effect: 'read',
  input: z.object({ page: z.number().int().positive() }),
  handler: async ({ page }) => pageResult(page),
});

function engineOn(store: Store, turns: number): Promise<Engine> {
  const tools = new ToolRegistry();
  for (const t of [...builtinTools, readPage]) tools.register(t);
  const llm = new ConversationLlm(turns);
  return Engine.create({ store, bus: new InProcessBus(), llm: () => llm, tools, nodeId: 'w6-fork', graphs: [conversationGraph(turns)] });
}

const line = (label: string, t: TableStats, by: Record<string, TableStats>) =>
  `  ${label.padEnd(38)} ${String(t.rows).padStart(6)} rows ${String(t.rowBytes).padStart(10)} B  (${Object.entries(by)
    .map(([k, v]) => `${k.replace(/^public\./, '')} ${v.rowBytes}`)
    .join(', ')})`;

async function measure(turns: number): Promise<void> {
  const db = await createScratchDatabase();
  if (!db.ok) throw new Error(db.reason);
  const store = await openPgStore({ url: db.url });
  const engine = await engineOn(store, turns);
  try {
    const t0 = await tableStats(db.url);
    const run = await engine.waitForRun((await engine.startRun({ graph: conversationName(turns), input: { task: w6User(turns) } })).id, 30 * 60_000);
    if (run.status !== 'succeeded') throw new Error(`the conversation ended ${run.status}`);
    const orig = statsDelta(t0, await tableStats(db.url));
    console.log(`\nW6, ${turns} turns (unique content ${uniqueContentBytes(turns)} B):`);
    console.log(line('the conversation', totalOf(orig), orig));
    const steps = (await psql(db.url, `select step from checkpoints where run_id = '${run.id}' order by step`)).map((r) => Number(r[0]));
    // The last step ended the run (nothing happens after it): the last one a fork can start from is the one before.
    const last = steps.at(-2) ?? 0;
    const cases: Array<[string, Parameters<Engine['replay']>[1]]> = [
      ['recorded replay from step 0', { fromStep: 0, mode: 'recorded' }],
      ['live fork from step 0', { fromStep: 0, mode: 'live', overrides: { budget: { tools: 2_000_000 } } }],
      [`live fork from step ${last}`, { fromStep: last, mode: 'live', overrides: { budget: { tools: 2_000_000 } } }],
    ];
    for (const [label, req] of cases) {
      const before = await tableStats(db.url);
      const r = await engine.waitForRun((await engine.replay(run.id, req)).id, 30 * 60_000);
      if (r.status !== 'succeeded') throw new Error(`${label} ended ${r.status}: ${JSON.stringify(r.error)}`);
      const d = statsDelta(before, await tableStats(db.url));
      console.log(line(label, totalOf(d), d));
      const [rows] = await psql(
        db.url,
        `select count(*), coalesce(sum(octet_length(packed)), 0), coalesce(sum(octet_length(packed_turns)), 0), count(packed_turns) from journal where run_id = '${r.id}'`,
      );
      const [cps] = await psql(db.url, `select count(*), coalesce(sum(octet_length(zstate)), 0) from checkpoints where run_id = '${r.id}'`);
      console.log(
        `    journal ${rows![0]} rows (${rows![3]} with turn records): bodies ${rows![1]} B deflated, turn records ${rows![2]} B; checkpoints ${cps![0]}, ${cps![1]} B deflated`,
      );
    }
  } finally {
    await engine.shutdown();
    await store.close();
    await db.drop();
  }
}

async function main(): Promise<void> {
  const lengths = process.argv.slice(2).map(Number);
  for (const turns of lengths.length ? lengths : [100, 1000]) await measure(turns);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
