import type { ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startRuntime } from '@ao/gateway';
import type { Runtime } from '@ao/gateway';
import { loadConfig } from '@ao/runtime';
import { dropNatsPrefix, natsPrefix, natsUnreachable, queryOnce } from '@ao/runtime/testing';
import { CLUSTER_NATS_URL, GRAPHS, startNode, stop } from '../cluster.js';
import { graphs } from '../cluster-graphs.js';
import { summarize } from '../measure.js';
import type { Summary } from '../measure.js';
import { createScratchDatabase } from '../postgres.js';
import { BENCH_GRAPH, BENCH_STEPS } from '../workload.js';
import { cpuGroup } from './cgroup.js';
import type { CpuGroup, Throttling } from './cgroup.js';
import { hopBench } from './hops.js';
import type { HopResult } from './hops.js';
import { CpuMeter, processesNamed } from './proc-load.js';

/** What every point of the scaling bench was given. */
export interface ScaleSettings {
  counts: number[];
  /** CPUs each `ao node` may use (its cgroup's quota / period); 0: no quota. */
  cpusPerNode: number;
  /** Each node group's weight against the machine's other processes (see `cpuGroup`): it gets its quota on a busy machine. */
  weight: number;
  /** AO_NODE_TASKS of every node, and the runs in flight per node during the window. */
  nodeTasks: number;
  llmLatencyMs: number;
  warmupRuns: number;
  sequentialRuns: number;
  /** The hop measurement (model at 0 ms, no quota): runs of each side, alternated, after as many warm-up runs / 3; 0: not measured. */
  hopRuns: number;
  rampSec: number;
  windowSec: number;
  natsUrl: string;
}

/** CPU used during the window, in CPUs (CPU seconds / window seconds). */
export interface Load {
  /** Each node process. */
  nodes: number[];
  /** Every postgres process of the server (shared with whatever else uses it), and the bench database's backends alone. */
  postgres: number;
  postgresBench: number;
  /** nats-server (shared the same way). */
  nats: number;
  /** The bench process: the submitter and the gateway without a node that follows the runs. */
  submitter: number;
  /** The whole machine (all cores, everything on it), from /proc/stat. */
  machine: number;
}

export interface ScalePoint {
  /** 0: the embedded runtime (in-process bus, same Postgres), in the bench process, no quota. */
  nodes: number;
  /** One run at a time: run time / steps, from the run row (created to finished). */
  stepMs: Summary;
  /** During the window, all runs finished in it: the same per-step figure under load. */
  loadedStepMs?: Summary;
  inFlight?: number;
  completed?: number;
  runsPerSec?: number;
  stepsPerSec?: number;
  /** Postgres transactions committed in the bench database per step during the window (pg_stat_database). */
  commitsPerStep?: number;
  load?: Load;
  /** Per node over the window: periods the quota cut short / periods with work. */
  throttled?: Array<{ periods: number; throttled: number }>;
  runsHosted?: number[];
}

export type ScaleResult = { points: ScalePoint[]; settings: ScaleSettings; cgroup: string; hops?: HopResult | { skipped: string } } | { skipped: string };

type Finished = { at: number; createdAt: string; finishedAt: string };

async function machineBusy(): Promise<{ busy: number; total: number }> {
  const cpu = (await readFile('/proc/stat', 'utf8')).split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = cpu[3]! + (cpu[4] ?? 0);
  const total = cpu.reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / 100, total: total / 100 };
}

async function commits(url: string, db: string): Promise<number> {
  const [r] = await queryOnce(url, 'SELECT xact_commit::bigint AS c FROM pg_stat_database WHERE datname = $1', [db]);
  return Number(r?.c ?? 0);
}

/** One run of the bench graph through `rt`: its per-step time from its row, and when it was seen done. */
async function oneRun(rt: Runtime): Promise<Finished> {
  const run = await rt.engine.startRun({ graph: BENCH_GRAPH, input: {} });
  const done = await rt.engine.waitForRun(run.id, 120_000);
  if (done.status !== 'succeeded') throw new Error(`run ${run.id} ended ${done.status}`);
  return { at: performance.now(), createdAt: done.createdAt, finishedAt: done.finishedAt ?? done.updatedAt };
}
const perStep = (f: Finished) => (Date.parse(f.finishedAt) - Date.parse(f.createdAt)) / BENCH_STEPS;

async function sequential(rt: Runtime, s: ScaleSettings): Promise<Summary> {
  for (let i = 0; i < s.warmupRuns; i++) await oneRun(rt);
  const out: number[] = [];
  for (let i = 0; i < s.sequentialRuns; i++) out.push(perStep(await oneRun(rt)));
  return summarize(out);
}

/**
 * Runs/s, per-step latency and load with 1, 2 and 4 `ao node` processes, each in a cgroup of its
 * own allowed `cpusPerNode` CPUs, the offline model answering after `llmLatencyMs`. The bench
 * process is a gateway without a node: it keeps `nodeTasks` runs per node in flight (each node
 * runs that many node tasks at once) and follows them by push. After `rampSec`, the runs that
 * finish within `windowSec` are counted; the load is the CPU each process used in that window.
 * Before the cluster, the same runs one at a time on an embedded runtime (in-process bus, the same
 * Postgres) give the per-step latency without the cluster's hops.
 */
export async function clusterScaleBench(s: ScaleSettings, log: (s: string) => void): Promise<ScaleResult> {
  const why = await natsUnreachable(s.natsUrl);
  if (why) return { skipped: `NATS at ${s.natsUrl} unreachable: ${why}` };
  const probe = s.cpusPerNode > 0 ? await cpuGroup(`ao-bench-probe-${process.pid}`, s.cpusPerNode) : undefined;
  if (probe && 'unavailable' in probe) return { skipped: probe.unavailable };
  const cgroup = probe ? `cgroup v${probe.version} (${probe.version === 1 ? 'cpu.cfs_quota_us / cpu.cfs_period_us' : 'cpu.max'})` : 'none';
  await probe?.remove();
  const points: ScalePoint[] = [];

  // What the hops cost with nothing to hide them: model at 0 ms, no quota, one run at a time.
  const hops = s.hopRuns > 0 ? await hopBench({ warmupRuns: Math.max(1, Math.round(s.hopRuns / 3)), runs: s.hopRuns, natsUrl: s.natsUrl }, log) : undefined;

  // The embedded runtime: the same graph and model, no NATS.
  const embedded = await embeddedPoint(s, log);
  if ('skipped' in embedded) return embedded;
  points.push(embedded);

  for (const n of s.counts) {
    const point = await clusterPoint(n, s, log);
    if ('skipped' in point) return point;
    points.push(point);
  }
  return { points, settings: s, cgroup, ...(hops ? { hops } : {}) };
}

/** The runs one at a time on an embedded runtime (in-process bus, the same Postgres): point 0. */
async function embeddedPoint(s: ScaleSettings, log: (s: string) => void): Promise<ScalePoint | { skipped: string }> {
  const db = await createScratchDatabase();
  if (!db.ok) return { skipped: db.reason };
  const dir = await mkdtemp(join(tmpdir(), 'ao-bench-scale-'));
  const rt = await startRuntime(
    loadConfig({ DATABASE_URL: db.url, AO_DATA_DIR: dir, AO_LLM_LATENCY_MS: String(s.llmLatencyMs), AO_NODE_ID: 'bench-embedded', AO_LOG_LEVEL: 'warn' }),
    { graphs },
  );
  try {
    log(`  embedded: ${s.warmupRuns} warm-up runs, ${s.sequentialRuns} one at a time`);
    return { nodes: 0, stepMs: await sequential(rt, s) };
  } finally {
    await rt.close();
    await db.drop();
    await rm(dir, { recursive: true, force: true });
  }
}

/** `n` nodes, each in its CPU group: runs one at a time, then `nodeTasks * n` in flight, measured over the window. */
async function clusterPoint(n: number, s: ScaleSettings, log: (s: string) => void): Promise<ScalePoint | { skipped: string }> {
  const db = await createScratchDatabase();
  if (!db.ok) return { skipped: db.reason };
  const prefix = natsPrefix('scale');
  const dir = await mkdtemp(join(tmpdir(), 'ao-bench-scale-'));
  const env = {
    DATABASE_URL: db.url,
    NATS_URL: s.natsUrl,
    AO_NATS_PREFIX: prefix,
    AO_DATA_DIR: dir,
    AO_LLM_LATENCY_MS: String(s.llmLatencyMs),
    AO_GRAPHS: GRAPHS,
  };
  const procs: ChildProcess[] = [];
  const groups: CpuGroup[] = [];
  const ids = Array.from({ length: n }, (_, i) => `bench-n${i + 1}`);
  const gateway = await startRuntime(loadConfig({ ...env, AO_NODE_ID: 'bench-gateway', AO_LOG_LEVEL: 'warn' }), { passive: true, graphs });
  try {
    for (const id of ids) {
      // Started without a quota (compiling the CLI through tsx takes seconds of CPU), then put in its group.
      const p = await startNode({ ...env, AO_NODE_ID: id, AO_NODE_TASKS: String(s.nodeTasks) });
      procs.push(p);
      if (s.cpusPerNode > 0) {
        const g = await cpuGroup(`ao-bench-${process.pid}-${id}`, s.cpusPerNode, { weight: s.weight });
        if ('unavailable' in g) throw new Error(g.unavailable);
        groups.push(g);
        await g.add(p.pid!);
      }
    }
    log(
      `  ${n} node(s), ${s.cpusPerNode || 'unlimited'} CPU each: ${s.warmupRuns} warm-up runs, ${s.sequentialRuns} one at a time, then ${s.nodeTasks * n} in flight for ${s.rampSec} + ${s.windowSec} s`,
    );
    const stepMs = await sequential(gateway, s);

    const inFlight = s.nodeTasks * n;
    const t0 = performance.now();
    const from = t0 + s.rampSec * 1000;
    const to = from + s.windowSec * 1000;
    const finished: Finished[] = [];
    const hosted = async () => {
      const all = await gateway.engine.nodes().catch(() => []);
      return ids.map((id) => all.find((x) => x.id === id)?.runsHosted ?? 0);
    };
    const meters = meterWindow({ from, to, procs, groups, db, hosted });
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (performance.now() < to) finished.push(await oneRun(gateway));
      }),
    );
    const window = await meters;
    const inWindow = finished.filter((f) => f.at >= from && f.at < to);
    const p = windowPoint(n, s.windowSec, { stepMs, inFlight, inWindow, ...window });
    log(
      `    ${p.runsPerSec!.toFixed(2)} runs/s, ${p.stepsPerSec!.toFixed(1)} steps/s; step p50 ${p.stepMs.p50.toFixed(0)} ms alone, ${p.loadedStepMs!.p50.toFixed(0)} ms loaded; load ${JSON.stringify(p.load)}`,
    );
    return p;
  } finally {
    for (const p of procs) await stop(p);
    for (const g of groups) await g.remove();
    await gateway.close();
    await db.drop();
    await dropNatsPrefix(prefix, s.natsUrl);
    await rm(dir, { recursive: true, force: true });
  }
}

/** The meters read when the window opens. */
type Mark = {
  nodes: CpuMeter[];
  pg: CpuMeter;
  pgBench: CpuMeter;
  nats: CpuMeter;
  self: NodeJS.CpuUsage;
  machine: { busy: number; total: number };
  commits: number;
  throttling: Throttling[];
  hosted: number[];
};
/** What they read when it closes (CPU seconds used since the mark). */
type End = {
  nodes: number[];
  pg: number;
  pgBench: number;
  nats: number;
  self: NodeJS.CpuUsage;
  machine: { busy: number; total: number };
  commits: number;
  throttling: Throttling[];
  hosted: number[];
  at: number;
};

/** Waits for the window (`from` to `to`, performance.now() times) and reads every meter at its start and its end. */
async function meterWindow(w: {
  from: number;
  to: number;
  procs: ChildProcess[];
  groups: CpuGroup[];
  db: { url: string; name: string };
  hosted: () => Promise<number[]>;
}): Promise<{ mark: Mark; end: End }> {
  const { procs, groups, db, hosted } = w;
  await new Promise((r) => setTimeout(r, w.from - performance.now()));
  const pg = await processesNamed('postgres');
  const mark: Mark = {
    nodes: await Promise.all(procs.map((p) => CpuMeter.of([p.pid!]))),
    pg: await CpuMeter.of(pg.map((x) => x.pid)),
    pgBench: await CpuMeter.of(pg.filter((x) => x.cmdline.includes(` ${db.name} `)).map((x) => x.pid)),
    nats: await CpuMeter.of((await processesNamed('nats-server')).map((x) => x.pid)),
    self: process.cpuUsage(),
    machine: await machineBusy(),
    commits: await commits(db.url, db.name),
    throttling: await Promise.all(groups.map((g) => g.throttling())),
    hosted: await hosted(),
  };
  await new Promise((r) => setTimeout(r, w.to - performance.now()));
  const end: End = {
    nodes: await Promise.all(mark.nodes.map((m) => m.used())),
    pg: await mark.pg.used(),
    pgBench: await mark.pgBench.used(),
    nats: await mark.nats.used(),
    self: process.cpuUsage(mark.self),
    machine: await machineBusy(),
    commits: await commits(db.url, db.name),
    throttling: await Promise.all(groups.map((g) => g.throttling())),
    hosted: await hosted(),
    at: performance.now(),
  };
  return { mark, end };
}

/** A cluster point from the runs that finished in the window and the meters' readings. */
function windowPoint(n: number, sec: number, r: { stepMs: Summary; inFlight: number; inWindow: Finished[]; mark: Mark; end: End }): ScalePoint {
  const { mark, end, inWindow } = r;
  const cpus = (x: number) => x / sec;
  const steps = inWindow.length * BENCH_STEPS;
  return {
    nodes: n,
    stepMs: r.stepMs,
    loadedStepMs: summarize(inWindow.map(perStep)),
    inFlight: r.inFlight,
    completed: inWindow.length,
    runsPerSec: inWindow.length / sec,
    stepsPerSec: steps / sec,
    commitsPerStep: steps ? (end.commits - mark.commits) / steps : Number.NaN,
    load: {
      nodes: end.nodes.map(cpus),
      postgres: cpus(end.pg),
      postgresBench: cpus(end.pgBench),
      nats: cpus(end.nats),
      submitter: cpus((end.self.user + end.self.system) / 1e6),
      machine: cpus(end.machine.busy - mark.machine.busy),
    },
    throttled: end.throttling.map((t, i) => ({ periods: t.periods - mark.throttling[i]!.periods, throttled: t.throttled - mark.throttling[i]!.throttled })),
    runsHosted: end.hosted.map((h, i) => h - mark.hosted[i]!),
  };
}

export function scaleSettings(env: NodeJS.ProcessEnv = process.env): ScaleSettings {
  const num = (k: string, d: number) => (env[k] ? Number(env[k]) : d);
  return {
    counts: (env.BENCH_SCALE_NODES ?? '1,2,4').split(',').map(Number),
    cpusPerNode: num('BENCH_SCALE_CPUS', 0.1),
    weight: num('BENCH_SCALE_WEIGHT', 4),
    nodeTasks: num('BENCH_SCALE_TASKS', 32),
    llmLatencyMs: num('BENCH_SCALE_LLM_MS', 500),
    warmupRuns: num('BENCH_SCALE_WARMUP', 2),
    sequentialRuns: num('BENCH_SCALE_RUNS', 6),
    hopRuns: num('BENCH_HOP_RUNS', 30),
    rampSec: num('BENCH_SCALE_RAMP_SEC', 6),
    windowSec: num('BENCH_SCALE_SEC', 20),
    natsUrl: CLUSTER_NATS_URL,
  };
}
