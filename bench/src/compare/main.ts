/**
 * `pnpm bench`: the six workloads (W1-W6) on ours (both modes), LangGraph.js and DBOS, each
 * system in a process of its own on a fresh scratch database, the systems alternated round by
 * round (A B C D A B C D) so machine drift falls on all of them. Prints the table and writes
 * bench/RESULTS.md and a line of bench/results.jsonl. The `cluster` workload measures ours alone
 * with 1, 2 and 3 `ao node` processes on NATS JetStream + Postgres (bench/src/cluster.ts) and
 * writes bench/CLUSTER.md and a `"kind":"cluster"` line; RESULTS.md is left as it is when none of
 * W1-W6 ran.
 */
import { appendFile, readFile, writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { ClusterResult, ClusterSettings, ClusterWorkload } from '../cluster.js';
import { intEnv, listEnv, machineInfo } from '../env.js';
import { renderClusterMarkdown, renderClusterTable } from '../report.js';
import { renderMarkdown, renderTables } from './report.js';
import type { CompareData } from './report.js';
import { killTurn } from './conversation.js';
import { runConversationCrash, runCrashResume, runWorker } from './run-worker.js';
import { SYSTEM_LABEL, SYSTEMS } from './system.js';
import type { SystemName } from './system.js';

const RESULTS_MD = fileURLToPath(new URL('../../RESULTS.md', import.meta.url));
const CLUSTER_MD = fileURLToPath(new URL('../../CLUSTER.md', import.meta.url));
const RESULTS_JSONL = fileURLToPath(new URL('../../results.jsonl', import.meta.url));
const HOW_MD = fileURLToPath(new URL('./how-measured.md', import.meta.url));

/** BENCH_WORKLOADS: W1-W6 compare the systems; `cluster` is ours alone on 1, 2 and 3 nodes. */
const WORKLOADS = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6', 'cluster'];

/** The peers' versions: bench/package.json pins them exactly. */
async function peerVersions(): Promise<Record<string, string>> {
  const pkg = JSON.parse(await readFile(fileURLToPath(new URL('../../package.json', import.meta.url)), 'utf8')) as { devDependencies: Record<string, string> };
  return pkg.devDependencies;
}

/** An error as one short line for the report (a worker's stderr tail can be long). */
const firstLines = (e: unknown): string => (e instanceof Error ? e.message : String(e)).split('\n').filter(Boolean).slice(0, 3).join(' / ').slice(0, 400);

/** What this bench run measures (from BENCH_* variables), checked. */
function settingsFromEnv() {
  const knobs: CompareData['knobs'] = {
    rounds: intEnv('BENCH_ROUNDS', 2),
    warmup: intEnv('BENCH_WARMUP', 10),
    w1Runs: intEnv('BENCH_W1_RUNS', 100),
    w1MaxSec: intEnv('BENCH_W1_MAX_SEC', 10),
    w2Runs: intEnv('BENCH_W2_RUNS', 20),
    w3Sec: intEnv('BENCH_W3_SEC', 30),
    w3Concurrency: intEnv('BENCH_W3_CONCURRENCY', 64),
    w4Steps: intEnv('BENCH_W4_STEPS', 1000),
    w4Reps: intEnv('BENCH_W4_REPS', 3),
    w5Runs: listEnv('BENCH_W5_RUNS', '1,1000').map(Number),
    w6Turns: listEnv('BENCH_W6_TURNS', '10,100,1000').map(Number),
    w6ResumeTurns: listEnv('BENCH_W6_RESUME_TURNS', '10,1000').map(Number),
    w6TimeoutSec: intEnv('BENCH_W6_TIMEOUT_SEC', 1200),
  };
  for (const n of [...knobs.w6Turns, ...knobs.w6ResumeTurns])
    if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new Error('BENCH_W6_TURNS and BENCH_W6_RESUME_TURNS: whole numbers from 1 to 10000');
  if (knobs.w4Steps % 2 !== 0 || knobs.w4Steps < 4) throw new Error('BENCH_W4_STEPS must be even and at least 4');
  const systems = listEnv('BENCH_SYSTEMS', SYSTEMS.join(',')) as SystemName[];
  for (const s of systems) if (!SYSTEMS.includes(s)) throw new Error(`unknown system ${s}; known: ${SYSTEMS.join(', ')}`);
  const workloads = listEnv('BENCH_WORKLOADS', WORKLOADS.join(','));
  for (const w of workloads) if (!WORKLOADS.includes(w)) throw new Error(`unknown workload ${w}; known: ${WORKLOADS.join(', ')}`);
  const clusterWorkloads = listEnv('BENCH_CLUSTER_WORKLOADS', 'pipeline,swarm') as ClusterWorkload[];
  for (const w of clusterWorkloads) if (w !== 'pipeline' && w !== 'swarm') throw new Error(`unknown cluster workload ${w}; known: pipeline, swarm`);
  const cluster = {
    counts: [1, 2, 3],
    workloads: clusterWorkloads,
    sequentialRuns: intEnv('BENCH_CLUSTER_RUNS', 40),
    concurrency: intEnv('BENCH_CLUSTER_CONCURRENCY', 16),
    windowSec: intEnv('BENCH_CLUSTER_SEC', 10),
  };
  return { knobs, systems, workloads, cluster };
}

type Log = (s: string) => void;

async function main(): Promise<void> {
  const started = performance.now();
  const { knobs, systems, workloads, cluster } = settingsFromEnv();
  const d: CompareData = {
    machine: machineInfo(),
    peers: await peerVersions(),
    knobs,
    systems,
    w1: {},
    w2: {},
    w3: {},
    w4: {},
    w5: {},
    w6: {},
    notes: [],
    totalSec: 0,
  };
  const log = (s: string) => console.log(s);

  await runW1ToW4(d, workloads, log);
  if (workloads.includes('w5')) await runW5(d, log);
  if (workloads.includes('w6')) await runW6(d, log);
  d.totalSec = (performance.now() - started) / 1000;
  if (workloads.some((w) => w !== 'cluster')) {
    log('');
    log(renderTables(d));
    await writeFile(RESULTS_MD, renderMarkdown(d, await readFile(HOW_MD, 'utf8')));
    await appendFile(RESULTS_JSONL, `${JSON.stringify({ kind: 'compare', ...d })}\n`);
    log(`\nwrote ${RESULTS_MD} and appended to ${RESULTS_JSONL}`);
  }

  if (workloads.includes('cluster')) await runCluster(cluster, log);
}

/** W1-W4, each system in turn, round by round (W4 once). */
async function runW1ToW4(d: CompareData, workloads: string[], log: Log): Promise<void> {
  const { knobs, systems } = d;
  for (const w of ['w1', 'w2', 'w3', 'w4'] as const) {
    if (!workloads.includes(w)) continue;
    for (let round = 1; round <= (w === 'w4' ? 1 : knobs.rounds); round++) {
      for (const s of systems) {
        log(`[bench] ${w} round ${round}: ${s}`);
        try {
          const r = await runWorker(s, w, knobs);
          if (r.workload !== w) throw new Error(`expected ${w}, got ${r.workload}`);
          ((d[w][s] ??= []) as (typeof r)[]).push(r);
        } catch (e) {
          d.notes.push(`${SYSTEM_LABEL[s]} could not run ${w.toUpperCase()} (round ${round}): ${firstLines(e)}`);
          log(`[bench] ${s} ${w} failed: ${firstLines(e)}`);
        }
      }
    }
  }
}

/** W5: crash and resume with 1 and many runs in flight. */
async function runW5(d: CompareData, log: Log): Promise<void> {
  const { knobs, systems } = d;
  for (const n of knobs.w5Runs) {
    for (let round = 1; round <= (n > 1 ? 1 : knobs.rounds); round++) {
      for (const s of systems) {
        log(`[bench] w5 (${n} in flight) round ${round}: ${s}`);
        try {
          const r = await runCrashResume(s, n, knobs);
          if (r.workload !== 'w5-recover') throw new Error('expected w5-recover');
          ((d.w5[s] ??= {})[n] ??= []).push(r);
        } catch (e) {
          d.notes.push(`${SYSTEM_LABEL[s]} could not run W5 with ${n} in flight (round ${round}): ${firstLines(e)}`);
          log(`[bench] ${s} w5 ${n} failed: ${firstLines(e)}`);
        }
      }
    }
  }
}

/** W6: long conversations, then their crash-resume. */
async function runW6(d: CompareData, log: Log): Promise<void> {
  const { knobs, systems } = d;
  const timeoutMs = knobs.w6TimeoutSec * 1000;
  for (const n of knobs.w6Turns) {
    for (const s of systems) {
      log(`[bench] w6 (${n} turns): ${s}`);
      try {
        const r = await runWorker(s, 'w6', knobs, { env: { BENCH_W6_TURNS_RUN: String(n) }, timeoutMs });
        if (r.workload !== 'w6') throw new Error('expected w6');
        (d.w6[s] ??= { runs: {}, resumes: {} }).runs[n] = r;
      } catch (e) {
        d.notes.push(`${SYSTEM_LABEL[s]} could not run W6 with ${n} turns: ${firstLines(e)}`);
        log(`[bench] ${s} w6 ${n} failed: ${firstLines(e)}`);
      }
    }
  }
  for (const n of knobs.w6ResumeTurns) {
    for (const s of systems) {
      log(`[bench] w6 crash-resume (${n} turns, killed at turn ${killTurn(n)}): ${s}`);
      try {
        const r = await runConversationCrash(s, n, killTurn(n), knobs, timeoutMs);
        if (r.workload !== 'w6-recover') throw new Error('expected w6-recover');
        (d.w6[s] ??= { runs: {}, resumes: {} }).resumes[n] = r;
      } catch (e) {
        d.notes.push(`${SYSTEM_LABEL[s]} could not run W6's crash-resume with ${n} turns: ${firstLines(e)}`);
        log(`[bench] ${s} w6 crash-resume ${n} failed: ${firstLines(e)}`);
      }
    }
  }
}

/** The `cluster` workload: ours alone, scaling over `ao node` processes; writes CLUSTER.md. */
async function runCluster(cluster: ReturnType<typeof settingsFromEnv>['cluster'], log: Log): Promise<void> {
  const t0 = performance.now();
  const machine = machineInfo();
  // Loaded only here: they start gateways in this process.
  const { clusterScaleBench, scaleSettings } = await import('../scale/cluster-scale.js');
  const { renderHopTable, renderScaleTable } = await import('../scale/report.js');
  const scaleSet = scaleSettings();
  log(
    `[bench] cluster scaling: ${scaleSet.counts.join(', ')} ao node processes, ${scaleSet.cpusPerNode || 'unlimited'} CPU each, model at ${scaleSet.llmLatencyMs} ms`,
  );
  const scale = await clusterScaleBench(scaleSet, log);
  log('');
  log(
    renderScaleTable(scale)
      .map((x) => x.replaceAll('**', ''))
      .join('\n'),
  );
  if (!('skipped' in scale))
    log(
      renderHopTable(scale.hops)
        .map((x) => x.replaceAll('**', ''))
        .join('\n'),
    );
  // The cost of the hops at 0 ms model latency, 1-3 nodes on the shared cores: BENCH_CLUSTER_OVERHEAD=1.
  let overhead: { settings: ClusterSettings; cluster: ClusterResult } | undefined;
  if (process.env.BENCH_CLUSTER_OVERHEAD === '1') {
    log(`[bench] cluster overhead: ${cluster.counts.join(', ')} ao node processes on NATS JetStream + Postgres (${cluster.workloads.join(', ')})`);
    const { clusterBench, clusterSettings } = await import('../cluster.js');
    const settings = clusterSettings(cluster);
    overhead = { settings, cluster: await clusterBench({ ...cluster, log }) };
    log(
      renderClusterTable(overhead.cluster)
        .map((x) => x.replaceAll('**', ''))
        .join('\n'),
    );
  }
  const c = { machine, scale, ...(overhead ?? {}), totalSec: (performance.now() - t0) / 1000 };
  await writeFile(CLUSTER_MD, renderClusterMarkdown(c));
  await appendFile(RESULTS_JSONL, `${JSON.stringify({ kind: 'cluster', ...c })}\n`);
  log(`\nwrote ${CLUSTER_MD} and appended to ${RESULTS_JSONL}`);
}

main().then(
  () => setTimeout(() => process.exit(0), 2000).unref(),
  (e: unknown) => {
    console.error('[bench] failed:', e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  },
);
