import { Engine, Verifier } from '@ao/actors';
import { exampleGraphs } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { builtinTools, InProcessBus, OfflineLlm, openPgliteStore, ToolRegistry } from '@ao/runtime';
import type { RunRecord, Store } from '@ao/runtime';

/** What verifying many recorded runs costs (`ao verify`'s core): runs recorded first, then each replayed recorded from step 0 in process. */
export interface VerifyRunsResult {
  runs: number;
  concurrency: number;
  /** Recording them (not part of the figure). */
  recordMs: number;
  /** Reading each run's log and verifying it, all of them. */
  verifyMs: number;
  perRunMs: number;
  identical: number;
  /** Resident memory after verifying them (the scratch store forgets each run once verified). */
  rssMiB: number;
}

const INPUTS: Array<[string, unknown]> = [
  ['triage', { intent: 'refund', order: 'A-1' }],
  ['triage', { intent: 'question' }],
  ['research-swarm', { topic: 'actor systems' }],
  ['draft-critique', { brief: 'a note on durable agents' }],
];

function registry(): ToolRegistry {
  const tools = new ToolRegistry();
  for (const t of builtinTools) tools.register(t);
  return tools;
}

/** Record `n` runs of the example graphs (waits aside) on `store`, 8 at a time. */
async function record(store: Store, n: number): Promise<RunRecord[]> {
  const engine = await Engine.create({
    store,
    bus: new InProcessBus(),
    llm: () => new OfflineLlm(),
    tools: registry(),
    graphs: exampleGraphs as readonly GraphBuilder<unknown>[],
    sweepIntervalMs: 0,
  });
  const out: RunRecord[] = [];
  try {
    for (let i = 0; i < n; i += 8) {
      const batch = Array.from({ length: Math.min(8, n - i) }, async (_, k) => {
        const [graph, input] = INPUTS[(i + k) % INPUTS.length]!;
        return engine.waitForRun((await engine.startRun({ graph, input })).id);
      });
      out.push(...(await Promise.all(batch)));
    }
  } finally {
    await engine.shutdown();
  }
  return out;
}

export async function verifyRuns(n: number, concurrency: number, log: (s: string) => void = () => undefined): Promise<VerifyRunsResult> {
  const store = await openPgliteStore();
  try {
    const t0 = performance.now();
    const runs = await record(store, n);
    const recordMs = performance.now() - t0;
    log(`  recorded ${runs.length} runs in ${(recordMs / 1000).toFixed(1)} s`);
    const verifier = new Verifier({ graphs: exampleGraphs as readonly GraphBuilder<unknown>[], tools: registry() });
    const t1 = performance.now();
    let identical = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let i = next++; i < runs.length; i = next++) {
          const run = runs[i]!;
          const v = await verifier.verify(run, await store.listEvents(run.id, { limit: 1_000_000 }), await store.listCheckpoints(run.id));
          if (v.outcome === 'identical') identical += 1;
          else log(`  ${run.id} ${v.outcome}: ${JSON.stringify(v.divergence ?? v.error)}`);
        }
      }),
    );
    const verifyMs = performance.now() - t1;
    await verifier.close();
    return {
      runs: runs.length,
      concurrency,
      recordMs,
      verifyMs,
      perRunMs: verifyMs / runs.length,
      identical,
      rssMiB: Math.round(process.memoryUsage().rss / 2 ** 20),
    };
  } finally {
    await store.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  // `pnpm bench:verify [runs] [concurrency]`
  const n = Number(process.argv[2] ?? 200);
  const c = Number(process.argv[3] ?? 4);
  verifyRuns(n, c, console.log).then(
    (r) => console.log(JSON.stringify(r)),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
