/**
 * One system, one workload, in a process of its own (`tsx worker.ts`), on the scratch database
 * the orchestrator made for it. Prints one line `RESULT <json>` on stdout. Every system gets the
 * same timing code; only `BenchSystem` differs.
 */
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { uniqueContentBytes, w6Hang } from './conversation.js';
import { cpuBetween, serverCpu, statsDelta, tableStats, totalOf } from './db.js';
import type { TableStats } from './db.js';
import { hang } from './standin.js';
import { PIPELINE_STEPS } from './system.js';
import type { BenchSystem, OpenOptions, SystemName } from './system.js';

export type Workload = 'w1' | 'w2' | 'w3' | 'w4' | 'w5-crash' | 'w5-recover' | 'w6' | 'w6-crash' | 'w6-recover';

export interface WorkerKnobs {
  warmup: number;
  w1Runs: number;
  w1MaxSec: number;
  w2Runs: number;
  w3Sec: number;
  w3Concurrency: number;
  w4Steps: number;
  w4Reps: number;
}

export type WorkerResult =
  | { workload: 'w1'; stepMs: number[]; runs: number }
  | { workload: 'w2'; joinMs: number[] }
  | { workload: 'w3'; runs: number; elapsedSec: number; clientCpuSec: number; serverCpuSec: number | null; failed: number }
  | {
      workload: 'w4';
      steps: number;
      runMs: number;
      replayMs: number[];
      /** Per table, what the whole run wrote (Postgres-backed systems only). */
      written: Record<string, TableStats> | null;
      total: TableStats | null;
      /** The same for a run of `shortSteps`, to see whether cost per step is flat in run length. */
      shortSteps: number;
      shortTotal: TableStats | null;
    }
  | { workload: 'w5-crash'; ids: string[] }
  | {
      workload: 'w5-recover';
      runs: number;
      failed: number;
      resumed: number;
      readyMs: number;
      firstResumedMs: number;
      allResumedMs: number;
      allFinishedMs: number;
    }
  | {
      workload: 'w6';
      turns: number;
      runMs: number;
      /** Per table, what the conversation wrote (Postgres-backed systems only). */
      written: Record<string, TableStats> | null;
      total: TableStats | null;
      /** The bytes of the conversation's unique content (`uniqueContentBytes`). */
      uniqueBytes: number;
      /** The process's peak resident memory (MiB). */
      peakRssMiB: number;
    }
  | { workload: 'w6-crash'; ids: string[] }
  | { workload: 'w6-recover'; turns: number; killedAt: number; ok: boolean; readyMs: number; firstResumedMs: number; finishedMs: number; peakRssMiB: number };

async function open(system: SystemName, o: OpenOptions): Promise<BenchSystem> {
  switch (system) {
    case 'ours-embedded':
    case 'ours-pg-nats':
      return (await import('./ours.js')).openOurs(o);
    case 'langgraph':
      return (await import('./langgraph.js')).openLangGraph(o);
    case 'dbos':
      return (await import('./dbos.js')).openDbos(o);
  }
}

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

async function w1(s: BenchSystem, k: WorkerKnobs): Promise<WorkerResult> {
  for (let i = 0; i < k.warmup; i++) await s.pipeline();
  const stepMs: number[] = [];
  const deadline = performance.now() + k.w1MaxSec * 1000;
  let runs = 0;
  while (runs < k.w1Runs && performance.now() < deadline) {
    stepMs.push((await timed(() => s.pipeline())) / PIPELINE_STEPS);
    runs++;
  }
  return { workload: 'w1', stepMs, runs };
}

async function w2(s: BenchSystem, k: WorkerKnobs): Promise<WorkerResult> {
  for (let i = 0; i < Math.min(k.warmup, 5); i++) await s.fanout();
  const joinMs: number[] = [];
  for (let i = 0; i < k.w2Runs; i++) joinMs.push(await timed(() => s.fanout()));
  return { workload: 'w2', joinMs };
}

async function w3(s: BenchSystem, k: WorkerKnobs, dbUrl?: string): Promise<WorkerResult> {
  await Promise.all(Array.from({ length: Math.min(k.w3Concurrency, 16) }, () => s.pipeline()));
  const server0 = s.usesServer && dbUrl ? await serverCpu(dbUrl) : undefined;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const deadline = t0 + k.w3Sec * 1000;
  let runs = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: k.w3Concurrency }, async () => {
      while (performance.now() < deadline) {
        try {
          await s.pipeline();
          runs++;
        } catch (e) {
          failed++;
          if (failed === 1) console.error('[w3] a run failed:', e);
        }
      }
    }),
  );
  const elapsedSec = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const serverCpuSec = server0 ? cpuBetween(server0, await serverCpu(dbUrl!)) : null;
  return { workload: 'w3', runs, elapsedSec, clientCpuSec: (cpu.user + cpu.system) / 1e6, serverCpuSec, failed };
}

async function w4(s: BenchSystem, k: WorkerKnobs, dbUrl?: string): Promise<WorkerResult> {
  const measure = async (steps: number) => {
    const before = dbUrl ? await tableStats(dbUrl) : undefined;
    const t = performance.now();
    const id = await s.loop(steps);
    const runMs = performance.now() - t;
    const written = before ? statsDelta(before, await tableStats(dbUrl!)) : null;
    return { id, runMs, written };
  };
  const short = await measure(10);
  const long = await measure(k.w4Steps);
  const replayMs: number[] = [];
  for (let i = 0; i < k.w4Reps; i++) replayMs.push(await timed(() => s.replayLast(long.id)));
  return {
    workload: 'w4',
    steps: k.w4Steps,
    runMs: long.runMs,
    replayMs,
    written: long.written,
    total: long.written ? totalOf(long.written) : null,
    shortSteps: 10,
    shortTotal: short.written ? totalOf(short.written) : null,
  };
}

/** Runs started but not yet stuck at step 3, at most: the rest wait to start (all N end up in flight). */
const W5_STARTING = 64;
const W5_STALL_MS = 120_000;

async function w5Crash(s: BenchSystem, n: number): Promise<WorkerResult> {
  let progress: () => void = () => undefined;
  hang.onHung = () => progress();
  const next = () =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no run reached step 3 in ${W5_STALL_MS} ms (${hang.hung} of ${n} did)`)), W5_STALL_MS);
      progress = () => {
        clearTimeout(t);
        resolve();
      };
    });
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    while (ids.length - hang.hung >= W5_STARTING) await next();
    ids.push(await s.startHanging(i));
  }
  while (hang.hung < n) await next();
  return { workload: 'w5-crash', ids };
}

async function w5Recover(system: SystemName, o: OpenOptions, ids: string[]): Promise<WorkerResult> {
  const t0 = performance.now();
  const s = await open(system, o);
  const readyMs = performance.now() - t0;
  try {
    const failed = await s.resumeAll(ids);
    const allFinishedMs = performance.now() - t0;
    const r = hang.resumed;
    return {
      workload: 'w5-recover',
      runs: ids.length,
      failed,
      resumed: r.length,
      readyMs,
      firstResumedMs: Math.min(...r) - t0,
      allResumedMs: Math.max(...r) - t0,
      allFinishedMs,
    };
  } finally {
    await s.close();
  }
}

const peakRssMiB = () => process.resourceUsage().maxRSS / 1024;

/** W6: one conversation of `turns` turns; what it wrote to the database. */
async function w6(s: BenchSystem, turns: number, dbUrl?: string): Promise<WorkerResult> {
  const before = dbUrl ? await tableStats(dbUrl) : undefined;
  const t = performance.now();
  await s.conversation(turns);
  const runMs = performance.now() - t;
  const written = before ? statsDelta(before, await tableStats(dbUrl!)) : null;
  return { workload: 'w6', turns, runMs, written, total: written ? totalOf(written) : null, uniqueBytes: uniqueContentBytes(turns), peakRssMiB: peakRssMiB() };
}

/** W6 before the crash: the conversation started and caught in flight at the kill turn (its tool call hangs). */
async function w6Crash(s: BenchSystem, turns: number): Promise<WorkerResult> {
  const hung = new Promise<void>((resolve) => (w6Hang.onHung = resolve));
  const id = await s.startConversation(turns);
  await hung;
  return { workload: 'w6-crash', ids: [id] };
}

async function w6Recover(system: SystemName, o: OpenOptions, id: string, turns: number, killedAt: number): Promise<WorkerResult> {
  const t0 = performance.now();
  const s = await open(system, o);
  const readyMs = performance.now() - t0;
  try {
    const ok = await s.resumeConversation(id, turns);
    const finishedMs = performance.now() - t0;
    return { workload: 'w6-recover', turns, killedAt, ok, readyMs, firstResumedMs: (w6Hang.resumedAt ?? NaN) - t0, finishedMs, peakRssMiB: peakRssMiB() };
  } finally {
    await s.close();
  }
}

async function main(): Promise<void> {
  const system = process.env.BENCH_SYSTEM as SystemName;
  const workload = process.env.BENCH_WORKLOAD as Workload;
  const k = JSON.parse(process.env.BENCH_KNOBS ?? '{}') as WorkerKnobs;
  const o: OpenOptions = {
    ...(process.env.BENCH_DB_URL ? { dbUrl: process.env.BENCH_DB_URL } : {}),
    ...(process.env.BENCH_DATA_DIR ? { dataDir: process.env.BENCH_DATA_DIR } : {}),
    loopSteps: k.w4Steps ?? 1000,
    ...(process.env.BENCH_W6_TURNS_RUN ? { w6Turns: Number(process.env.BENCH_W6_TURNS_RUN) } : {}),
    ...(process.env.BENCH_NATS_URL ? { natsUrl: process.env.BENCH_NATS_URL, natsPrefix: process.env.BENCH_NATS_PREFIX! } : {}),
  };
  let result: WorkerResult;
  const ids = async () => JSON.parse(await readFile(process.env.BENCH_IDS_FILE!, 'utf8')) as string[];
  if (workload === 'w5-recover') {
    result = await w5Recover(system, o, await ids());
  } else if (workload === 'w6-recover') {
    result = await w6Recover(system, o, (await ids())[0]!, o.w6Turns!, Number(process.env.BENCH_W6_KILL_AT));
  } else {
    const s = await open(system, o);
    if (workload === 'w5-crash' || workload === 'w6-crash') {
      result = workload === 'w5-crash' ? await w5Crash(s, Number(process.env.BENCH_W5_RUNS ?? '1')) : await w6Crash(s, o.w6Turns!);
      hang.onHung = undefined;
      w6Hang.onHung = undefined;
      // Stays up, runs in flight, until the orchestrator kills it.
      console.log(`RESULT ${JSON.stringify(result)}`);
      return;
    }
    try {
      if (workload === 'w1') result = await w1(s, k);
      else if (workload === 'w2') result = await w2(s, k);
      else if (workload === 'w3') result = await w3(s, k, o.dbUrl);
      else if (workload === 'w6') result = await w6(s, o.w6Turns!, o.dbUrl);
      else result = await w4(s, k, o.dbUrl);
    } finally {
      await s.close();
    }
  }
  console.log(`RESULT ${JSON.stringify(result)}`);
  // Peers may leave timers behind (DBOS, pg pools): the result is out, so leave.
  setTimeout(() => process.exit(0), 200).unref();
}

main().catch((e: unknown) => {
  console.error(`[worker ${process.env.BENCH_SYSTEM} ${process.env.BENCH_WORKLOAD}] failed:`, e instanceof Error ? (e.stack ?? e.message) : e);
  process.exit(1);
});
