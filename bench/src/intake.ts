import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { loadPhase } from './load.js';
import { intEnv } from './env.js';
import { openBenchNode } from './node.js';
import type { BenchNode } from './node.js';
import { createScratchDatabase, redact } from './postgres.js';
import { BENCH_GRAPH } from './workload.js';

/**
 * The intake section of `bench:runtime` on its own (`pnpm --filter @ao/bench bench:intake`), for
 * before/after comparisons of the run-creation path without the whole bench: per store, the
 * node's open + migrate on a fresh data directory and again on the same one (migrations applied),
 * a short warm-up, then the load phase of bench:runtime (`loadPhase`: N runs POSTed at once over
 * HTTP, submit latency, all finished, none lost). Prints one JSON line per store; writes no file.
 */
async function timedOpen(open: () => Promise<BenchNode>): Promise<{ node: BenchNode; ms: number }> {
  const t0 = performance.now();
  const node = await open();
  return { node, ms: performance.now() - t0 };
}

async function section(store: 'pglite' | 'postgres', open: () => Promise<BenchNode>): Promise<Record<string, unknown>> {
  const fresh = await timedOpen(open);
  await fresh.node.close();
  const again = await timedOpen(open);
  const node = again.node;
  try {
    for (let i = 0; i < intEnv('BENCH_WARMUP', 20); i++) {
      const run = await node.engine.startRun({ graph: BENCH_GRAPH, input: {} });
      await node.engine.waitForRun(run.id, 60_000);
    }
    // BENCH_LOAD_FINISH=0: the submits only (the runs are not waited for): quicker A/B rounds.
    const load = await loadPhase(node.engine, intEnv('BENCH_LOAD_RUNS', 1000), 300_000, undefined, { finish: process.env.BENCH_LOAD_FINISH !== '0' });
    const r = (n: number) => Math.round(n * 10) / 10;
    return {
      store,
      openFreshMs: r(fresh.ms),
      openMigratedMs: r(again.ms),
      runs: load.runs,
      client: load.client,
      submitP50Ms: r(load.submitMs.p50),
      submitP99Ms: r(load.submitMs.p99),
      allAcceptedSec: r(load.submitSec),
      allFinishedSec: r(load.elapsedSec),
      runsPerSec: r(load.runsPerSec),
      lost: load.lost,
      serverCpuMs: load.serverCpuMs,
      load: Number(loadavg()[0]!.toFixed(1)),
    };
  } finally {
    await node.close();
  }
}

async function main(): Promise<void> {
  const which = (process.env.BENCH_STORES ?? 'pglite,postgres').split(',');
  if (which.includes('pglite')) {
    const dataDir = await mkdtemp(join(tmpdir(), 'ao-bench-intake-'));
    try {
      console.log(JSON.stringify(await section('pglite', () => openBenchNode({ AO_DATA_DIR: dataDir }))));
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  }
  if (which.includes('postgres')) {
    const db = await createScratchDatabase();
    if (!db.ok) return console.log(`postgres skipped: ${db.reason}`);
    const dataDir = await mkdtemp(join(tmpdir(), 'ao-bench-intake-'));
    try {
      console.error(`[bench] Postgres (${redact(db.url)})`);
      console.log(JSON.stringify(await section('postgres', () => openBenchNode({ AO_DATA_DIR: dataDir, DATABASE_URL: db.url }))));
    } finally {
      await db.drop();
      await rm(dataDir, { recursive: true, force: true });
    }
  }
}

main().then(
  () => setTimeout(() => process.exit(0), 2000).unref(),
  (e: unknown) => {
    console.error('[bench] failed:', e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  },
);
