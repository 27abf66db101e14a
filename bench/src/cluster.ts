import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startRuntime } from '@ao/gateway';
import { loadConfig } from '@ao/runtime';
import { dropNatsPrefix, natsPrefix, natsUnreachable, TEST_NATS_URL } from '@ao/runtime/testing';
import { summarize } from './measure.js';
import type { Summary } from './measure.js';
import { createScratchDatabase } from './postgres.js';
import { BENCH_GRAPH, BENCH_STEPS, benchPipeline } from './workload.js';

const CLI = fileURLToPath(new URL('../../gateway/src/cli/main.ts', import.meta.url));
const GRAPHS = fileURLToPath(new URL('./cluster-graphs.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ClusterPoint {
  nodes: number;
  sequentialRuns: number;
  stepMs: Summary;
  concurrency: number;
  completed: number;
  elapsedSec: number;
  runsPerSec: number;
  stepsPerSec: number;
}

export type ClusterResult = { points: ClusterPoint[] } | { skipped: string };

async function startNode(env: Record<string, string>): Promise<ChildProcess> {
  const p = spawn(process.execPath, ['--import', 'tsx', CLI, 'node'], { cwd: ROOT, env: { ...process.env, AO_LOG_LEVEL: 'silent', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  p.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const end = Date.now() + 30_000;
  while (!/node \S+ running/.test(log)) {
    if (p.exitCode !== null || Date.now() > end) throw new Error(`ao node did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return p;
}

const stop = (p: ChildProcess) =>
  new Promise<void>((r) => {
    if (p.exitCode !== null) return r();
    p.once('exit', () => r());
    p.kill('SIGTERM');
  });

/**
 * Runs/s and per-step overhead with 1, 2 and 3 `ao node` processes on NATS JetStream + Postgres.
 * The bench process is a gateway without a node (a passive engine): it enqueues runs and follows
 * their rows; the nodes take them from the queue. Each node hosts as many runs as the queue hands
 * it (the JetStream consumer keeps up to 64 unacknowledged items per node; a run is acknowledged
 * once hosted), so the load is set by the submitter's concurrency.
 */
export async function clusterBench(o: { counts: number[]; sequentialRuns: number; concurrency: number; windowSec: number; log: (s: string) => void }): Promise<ClusterResult> {
  const why = await natsUnreachable(TEST_NATS_URL);
  if (why) return { skipped: `NATS at ${TEST_NATS_URL} unreachable: ${why}` };
  const points: ClusterPoint[] = [];
  for (const n of o.counts) {
    const db = await createScratchDatabase();
    if (!db.ok) return { skipped: db.reason };
    const prefix = natsPrefix('bench');
    const dir = await mkdtemp(join(tmpdir(), 'ao-bench-cluster-'));
    const env = { DATABASE_URL: db.url, NATS_URL: TEST_NATS_URL, AO_NATS_PREFIX: prefix, AO_DATA_DIR: dir, AO_LLM_LATENCY_MS: '0', AO_GRAPHS: GRAPHS };
    const procs: ChildProcess[] = [];
    const gateway = await startRuntime(loadConfig({ ...env, AO_NODE_ID: 'bench-gateway', AO_LOG_LEVEL: 'warn' }), { passive: true, graphs: [benchPipeline()] });
    try {
      for (let i = 0; i < n; i++) procs.push(await startNode({ ...env, AO_NODE_ID: `bench-n${i + 1}` }));
      o.log(`  cluster of ${n} node(s): warm-up, ${o.sequentialRuns} sequential runs, then ${o.windowSec} s at concurrency ${o.concurrency}`);
      const one = async () => {
        const t0 = performance.now();
        const run = await gateway.engine.startRun({ graph: BENCH_GRAPH, input: {} });
        const done = await gateway.engine.waitForRun(run.id, 60_000);
        if (done.status !== 'succeeded') throw new Error(`cluster run ${run.id} ended ${done.status}`);
        return performance.now() - t0;
      };
      for (let i = 0; i < 10; i++) await one();
      const seq: number[] = [];
      for (let i = 0; i < o.sequentialRuns; i++) seq.push((await one()) / BENCH_STEPS);
      const start = performance.now();
      const deadline = start + o.windowSec * 1000;
      let completed = 0;
      await Promise.all(
        Array.from({ length: o.concurrency }, async () => {
          while (performance.now() < deadline) {
            await one();
            completed += 1;
          }
        }),
      );
      const elapsedSec = (performance.now() - start) / 1000;
      points.push({ nodes: n, sequentialRuns: seq.length, stepMs: summarize(seq), concurrency: o.concurrency, completed, elapsedSec, runsPerSec: completed / elapsedSec, stepsPerSec: (completed * BENCH_STEPS) / elapsedSec });
    } finally {
      for (const p of procs) await stop(p);
      await gateway.close();
      await db.drop();
      await dropNatsPrefix(prefix);
      await rm(dir, { recursive: true, force: true });
    }
  }
  return { points };
}
