/**
 * What checking payloads costs an in-process run (issue 23, typed envelopes): W3-like runs (the
 * research swarm's fan-out, and draft-critique's pipeline) on an in-memory PGlite with an instant
 * offline LLM, counting the payload schema parses (each schema's `safeParse`, wrapped) and timing
 * the runs. Counts are firm; times vary with the machine's load: compare them only as a ratio of
 * alternated runs of two builds (the same command in each worktree, in turn).
 *
 *   node --import tsx bench/src/envelope-checks.ts [runs=40]
 */
import { performance } from 'node:perf_hooks';
import { Engine, PAYLOADS } from '@ao/actors';
import { exampleGraphs } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { builtinTools, InProcessBus, OfflineLlm, openPgliteStore, ToolRegistry } from '@ao/runtime';

type Parsing = { safeParse: (v: unknown) => unknown };

/** Count every payload schema parse from now on. */
function countParses(): { readonly count: number; readonly ms: number } {
  const counter = { count: 0, ms: 0 };
  for (const schema of Object.values(PAYLOADS) as Parsing[]) {
    const parse = schema.safeParse.bind(schema);
    schema.safeParse = (v: unknown) => {
      counter.count++;
      const t = performance.now();
      try {
        return parse(v);
      } finally {
        counter.ms += performance.now() - t;
      }
    };
  }
  return counter;
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 40);
  const tools = new ToolRegistry();
  for (const t of builtinTools) tools.register(t);
  const store = await openPgliteStore();
  const llm = new OfflineLlm();
  const engine = await Engine.create({
    store,
    bus: new InProcessBus(),
    llm: () => llm,
    tools,
    graphs: [...exampleGraphs] as GraphBuilder<unknown>[],
    nodeId: 'bench',
  });
  const starts = [
    { graph: 'research-swarm', input: { topic: 'envelopes' } },
    { graph: 'draft-critique', input: { brief: 'A note on typed envelopes.' } },
  ];
  const round = async (n: number) => {
    for (let i = 0; i < n; i++) {
      const r = await engine.startRun(starts[i % starts.length]!);
      const done = await engine.waitForRun(r.id, 60_000);
      if (done.status !== 'succeeded') throw new Error(`run ${r.id} ended ${done.status}`);
    }
  };
  try {
    await round(6); // warm up
    const parses = countParses();
    const ids: string[] = [];
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) {
      const r = await engine.startRun(starts[i % starts.length]!);
      ids.push(r.id);
      await engine.waitForRun(r.id, 60_000);
    }
    const ms = performance.now() - t0;
    let envelopes = 0;
    for (const id of ids) envelopes += (await store.listEvents(id, { limit: 1_000_000 })).length;
    const { count, ms: parseMs } = parses;
    console.log(
      JSON.stringify({
        runs,
        envelopes,
        payloadParses: count,
        parsesPerEnvelope: +(count / envelopes).toFixed(3),
        parseMs: +parseMs.toFixed(1),
        ms: Math.round(ms),
        msPerRun: +(ms / runs).toFixed(2),
      }),
    );
  } finally {
    await engine.shutdown();
    await store.close();
  }
}

await main();
