import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { startRuntime } from '@ao/gateway';
import type { Runtime } from '@ao/gateway';
import { loadConfig } from '@ao/runtime';
import { dropNatsPrefix, natsPrefix, natsUnreachable, TEST_NATS_URL } from '@ao/runtime/testing';
import { summarize } from './measure.js';
import type { Summary } from './measure.js';
import { createScratchDatabase } from './postgres.js';
import { graphs } from './cluster-graphs.js';
import { BENCH_GRAPH, BENCH_STEPS, BENCH_SWARM_GRAPH, BENCH_SWARM_STEPS } from './workload.js';

export const CLI = fileURLToPath(new URL('../../gateway/src/cli/main.ts', import.meta.url));
export const GRAPHS = fileURLToPath(new URL('./cluster-graphs.ts', import.meta.url));
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** What a cluster run executes: the 5-step pipeline, or a run whose middle step is a 3-branch swarm. */
export type ClusterWorkload = 'pipeline' | 'swarm';

export const CLUSTER_WORKLOADS: Record<ClusterWorkload, { graph: string; steps: number }> = {
  pipeline: { graph: BENCH_GRAPH, steps: BENCH_STEPS },
  swarm: { graph: BENCH_SWARM_GRAPH, steps: BENCH_SWARM_STEPS },
};

/**
 * Unacknowledged run-queue items a node's JetStream consumer holds (`max_messages` of the run
 * queue's consumer in runtime/src/bus/nats/nats-bus.ts); a run is acknowledged once hosted.
 */
export const RUN_QUEUE_UNACKED = 64;

/** Warm-up runs per workload and node count, not timed. */
export const CLUSTER_WARMUP_RUNS = 10;

/** The settings of a cluster bench: what every node and the submitter were given. */
export interface ClusterSettings {
  counts: number[];
  workloads: ClusterWorkload[];
  warmupRuns: number;
  sequentialRuns: number;
  /** Runs the submitter keeps in flight during the window. */
  concurrency: number;
  windowSec: number;
  /** AO_NODE_TASKS of every node: node tasks (node executions, swarm branches) run at once. */
  nodeTasks: number;
  /** AO_NATS_ACK_WAIT_MS of every node. */
  ackWaitMs: number;
  runQueueUnacked: number;
  /** AO_LLM_LATENCY_MS of the offline LLM. */
  llmLatencyMs: number;
  natsUrl: string;
}

/** What one node did during a point's timed phases (sequential and window), from the cluster's membership. */
export interface NodeShare {
  id: string;
  runsHosted: number;
  tasksDone: number;
}

export interface ClusterPoint {
  /** Absent in lines written before the swarm workload: the pipeline. */
  workload?: ClusterWorkload;
  nodes: number;
  sequentialRuns: number;
  /**
   * Run time, one run at a time, from the run row: `createdAt` (set by the submitter's
   * `startRun`) to `finishedAt` (set by the hosting node's run supervisor); one machine, one clock.
   */
  runMs?: Summary;
  /**
   * Run time as the submitter saw it: `startRun` to `waitForRun` returning. A passive engine
   * follows another node's run by its run signals over NATS and reads the row when it ended.
   */
  seenMs?: Summary;
  /** {@link runMs} / steps: the pipeline only (a swarm's branches overlap). */
  stepMs?: Summary;
  concurrency: number;
  completed: number;
  elapsedSec: number;
  runsPerSec: number;
  stepsPerSec: number;
  /** Per node, over the sequential runs and the window; absent if the membership could not be read. */
  perNode?: NodeShare[];
}

export type ClusterResult = { points: ClusterPoint[]; settings?: ClusterSettings } | { skipped: string };

export const CLUSTER_NATS_URL = process.env.AO_BENCH_NATS_URL ?? TEST_NATS_URL;

/**
 * The settings for `o`; AO_NODE_TASKS and AO_NATS_ACK_WAIT_MS are taken from the environment (the
 * runtime's defaults when unset), validated as the runtime validates them, and given to every node.
 */
export function clusterSettings(o: {
  counts: number[];
  workloads?: ClusterWorkload[];
  sequentialRuns: number;
  concurrency: number;
  windowSec: number;
}): ClusterSettings {
  const pass: Record<string, string> = {};
  for (const k of ['AO_NODE_TASKS', 'AO_NATS_ACK_WAIT_MS'] as const) if (process.env[k]) pass[k] = process.env[k];
  const cfg = loadConfig(pass);
  return {
    counts: o.counts,
    workloads: o.workloads ?? ['pipeline'],
    warmupRuns: CLUSTER_WARMUP_RUNS,
    sequentialRuns: o.sequentialRuns,
    concurrency: o.concurrency,
    windowSec: o.windowSec,
    nodeTasks: cfg.AO_NODE_TASKS,
    ackWaitMs: cfg.AO_NATS_ACK_WAIT_MS,
    runQueueUnacked: RUN_QUEUE_UNACKED,
    llmLatencyMs: 0,
    natsUrl: CLUSTER_NATS_URL,
  };
}

export async function startNode(env: Record<string, string>): Promise<ChildProcess> {
  const p = spawn(process.execPath, ['--import', 'tsx', CLI, 'node'], {
    cwd: ROOT,
    env: { ...process.env, AO_LOG_LEVEL: 'silent', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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

export const stop = (p: ChildProcess) =>
  new Promise<void>((r) => {
    if (p.exitCode !== null) return r();
    p.once('exit', () => r());
    p.kill('SIGTERM');
  });

/** Membership entries are refreshed every 2 s: wait for one refresh after the phase, then read. */
async function shares(gateway: Runtime, ids: string[]): Promise<Map<string, NodeShare> | undefined> {
  await new Promise((r) => setTimeout(r, 2_500));
  try {
    const all = await gateway.engine.nodes();
    const out = new Map<string, NodeShare>();
    for (const id of ids) {
      const n = all.find((x) => x.id === id);
      if (!n) return undefined;
      out.set(id, { id, runsHosted: n.runsHosted, tasksDone: n.tasksDone });
    }
    return out;
  } catch {
    return undefined;
  }
}

/**
 * Runs/s and per-step overhead with 1, 2 and 3 `ao node` processes on NATS JetStream + Postgres.
 * The bench process is a gateway without a node (a passive engine): it enqueues runs and follows
 * their rows; the nodes take them from the run queue (the JetStream consumer keeps up to
 * {@link RUN_QUEUE_UNACKED} unacknowledged items per node; a run is acknowledged once hosted) and
 * host them, and every node execution and swarm branch is a node task on the task queue, pulled by
 * every node, AO_NODE_TASKS at a time. So the load is set by the submitter's concurrency. Each
 * workload runs on the same nodes of a node count, one after the other; what each node did is the
 * difference of its membership counters before and after the timed phases.
 */
export async function clusterBench(o: {
  counts: number[];
  workloads?: ClusterWorkload[];
  sequentialRuns: number;
  concurrency: number;
  windowSec: number;
  log: (s: string) => void;
}): Promise<ClusterResult> {
  const settings = clusterSettings(o);
  const why = await natsUnreachable(settings.natsUrl);
  if (why) return { skipped: `NATS at ${settings.natsUrl} unreachable: ${why}` };
  const points: ClusterPoint[] = [];
  for (const n of o.counts) {
    const db = await createScratchDatabase();
    if (!db.ok) return { skipped: db.reason };
    const prefix = natsPrefix('bench');
    const dir = await mkdtemp(join(tmpdir(), 'ao-bench-cluster-'));
    const env = {
      DATABASE_URL: db.url,
      NATS_URL: settings.natsUrl,
      AO_NATS_PREFIX: prefix,
      AO_DATA_DIR: dir,
      AO_LLM_LATENCY_MS: String(settings.llmLatencyMs),
      AO_GRAPHS: GRAPHS,
    };
    const nodeEnv = { ...env, AO_NODE_TASKS: String(settings.nodeTasks), AO_NATS_ACK_WAIT_MS: String(settings.ackWaitMs) };
    const procs: ChildProcess[] = [];
    const ids = Array.from({ length: n }, (_, i) => `bench-n${i + 1}`);
    const gateway = await startRuntime(loadConfig({ ...env, AO_NODE_ID: 'bench-gateway', AO_LOG_LEVEL: 'warn' }), { passive: true, graphs });
    try {
      for (const id of ids) procs.push(await startNode({ ...nodeEnv, AO_NODE_ID: id }));
      for (const workload of settings.workloads) points.push(await measureWorkload(gateway, ids, workload, n, settings, o));
    } finally {
      for (const p of procs) await stop(p);
      await gateway.close();
      await db.drop();
      await dropNatsPrefix(prefix, settings.natsUrl);
      await rm(dir, { recursive: true, force: true });
    }
  }
  return { points, settings };
}

/** One workload on a cluster of `n` nodes: warm-up, sequential runs, then the timed window at concurrency. */
async function measureWorkload(
  gateway: Awaited<ReturnType<typeof startRuntime>>,
  ids: string[],
  workload: ClusterWorkload,
  n: number,
  settings: ReturnType<typeof clusterSettings>,
  o: { sequentialRuns: number; concurrency: number; windowSec: number; log: (s: string) => void },
): Promise<ClusterPoint> {
  const { graph, steps } = CLUSTER_WORKLOADS[workload];
  o.log(
    `  cluster of ${n} node(s), ${workload}: ${settings.warmupRuns} warm-up runs, ${o.sequentialRuns} sequential runs, then ${o.windowSec} s at concurrency ${o.concurrency}`,
  );
  const one = async () => {
    const t0 = performance.now();
    const run = await gateway.engine.startRun({ graph, input: {} });
    const done = await gateway.engine.waitForRun(run.id, 60_000);
    const seen = performance.now() - t0;
    if (done.status !== 'succeeded') throw new Error(`cluster run ${run.id} (${graph}) ended ${done.status}`);
    return { seen, recorded: Date.parse(done.finishedAt ?? '') - Date.parse(done.createdAt) };
  };
  for (let i = 0; i < settings.warmupRuns; i++) await one();
  const before = await shares(gateway, ids);
  const seq: Array<{ seen: number; recorded: number }> = [];
  for (let i = 0; i < o.sequentialRuns; i++) seq.push(await one());
  const recorded = seq.map((x) => x.recorded);
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
  const after = await shares(gateway, ids);
  const perNode =
    before && after
      ? ids.map((id) => ({
          id,
          runsHosted: after.get(id)!.runsHosted - before.get(id)!.runsHosted,
          tasksDone: after.get(id)!.tasksDone - before.get(id)!.tasksDone,
        }))
      : undefined;
  return {
    workload,
    nodes: n,
    sequentialRuns: seq.length,
    runMs: summarize(recorded),
    seenMs: summarize(seq.map((x) => x.seen)),
    ...(workload === 'pipeline' ? { stepMs: summarize(recorded.map((x) => x / steps)) } : {}),
    concurrency: o.concurrency,
    completed,
    elapsedSec,
    runsPerSec: completed / elapsedSec,
    stepsPerSec: (completed * steps) / elapsedSec,
    ...(perNode ? { perNode } : {}),
  };
}
