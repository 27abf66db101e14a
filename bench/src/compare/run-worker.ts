import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dropNatsPrefix, natsPrefix } from '@ao/runtime/testing';
import { createScratchDatabase } from '../postgres.js';
import type { SystemName } from './system.js';
import type { WorkerKnobs, WorkerResult, Workload } from './worker.js';

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));
export const NATS_URL = process.env.AO_BENCH_NATS_URL ?? 'nats://127.0.0.1:4222';

/** Fresh resources for one system's process (or a crash/restart pair): database, data dir, NATS prefix. */
export async function resources(system: SystemName): Promise<{ env: Record<string, string>; release(): Promise<void> }> {
  const env: Record<string, string> = {};
  const undo: Array<() => Promise<void>> = [];
  if (system === 'ours-embedded') {
    const dir = await mkdtemp(join(tmpdir(), 'ao-cmp-'));
    env.BENCH_DATA_DIR = dir;
    undo.push(() => rm(dir, { recursive: true, force: true }));
  } else {
    const db = await createScratchDatabase();
    if (!db.ok) throw new Error(db.reason);
    env.BENCH_DB_URL = db.url;
    undo.push(db.drop);
  }
  if (system === 'ours-pg-nats') {
    const prefix = natsPrefix('cmp');
    env.BENCH_NATS_URL = NATS_URL;
    env.BENCH_NATS_PREFIX = prefix;
    undo.push(() => dropNatsPrefix(prefix, NATS_URL));
  }
  return {
    env,
    release: async () => {
      for (const u of undo.reverse()) await u().catch((e: unknown) => console.error('[bench] cleanup failed:', e));
    },
  };
}

export interface Worker {
  /** The RESULT line's payload. */
  result: Promise<WorkerResult>;
  /** SIGKILL, no warning (the crash of W5). */
  kill(): void;
  exited: Promise<void>;
}

/**
 * Start the worker as its own node process (node --import tsx, not the tsx wrapper, so a SIGKILL
 * hits the process that runs the system and nothing survives it).
 */
export function startWorker(system: SystemName, workload: Workload, knobs: WorkerKnobs, env: Record<string, string>): Worker {
  // BENCH_WORKER_NODE_ARGS: extra node flags for the workers, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
  const nodeArgs = (process.env.BENCH_WORKER_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', WORKER], {
    env: { ...process.env, ...env, BENCH_SYSTEM: system, BENCH_WORKLOAD: workload, BENCH_KNOBS: JSON.stringify(knobs) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const result = new Promise<WorkerResult>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /^RESULT (.*)$/m.exec(out);
      if (m) resolve(JSON.parse(m[1]!) as WorkerResult);
    });
    child.stderr.on('data', (b: Buffer) => {
      err = (err + b.toString()).slice(-8000);
    });
    child.once('exit', (code, signal) => reject(new Error(`worker ${system} ${workload} exited (${code ?? signal}) without a result:\n${err}`)));
  });
  result.catch(() => undefined);
  return { result, kill: () => child.kill('SIGKILL'), exited };
}

/** Options of one worker (or crash/restart pair): extra environment, and a time limit after which it is killed. */
export interface WorkerOptions {
  env?: Record<string, string>;
  timeoutMs?: number;
}

/** The worker's result, or (past `timeoutMs`) the worker SIGKILLed and an error. */
async function resultOf(w: Worker, what: string, timeoutMs?: number): Promise<WorkerResult> {
  if (timeoutMs === undefined) return w.result;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      w.kill();
      reject(new Error(`${what} gave no result in ${Math.round(timeoutMs / 1000)} s (killed)`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([w.result, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** One worker on fresh resources, released afterwards. */
export async function runWorker(system: SystemName, workload: Workload, knobs: WorkerKnobs, o: WorkerOptions = {}): Promise<WorkerResult> {
  const r = await resources(system);
  try {
    const w = startWorker(system, workload, knobs, { ...r.env, ...o.env });
    const result = await resultOf(w, `worker ${system} ${workload}`, o.timeoutMs);
    await w.exited;
    return result;
  } finally {
    await r.release();
  }
}

/**
 * A crash and a restart on the same resources: the `crash` worker gets its work in flight and
 * reports the ids, is SIGKILLed, and the `recover` worker (given the ids in `BENCH_IDS_FILE`)
 * resumes it and reports.
 */
async function crashThenRecover(system: SystemName, crash: Workload, recover: Workload, knobs: WorkerKnobs, o: WorkerOptions): Promise<WorkerResult> {
  const r = await resources(system);
  const dir = await mkdtemp(join(tmpdir(), `ao-cmp-${crash}-`));
  try {
    const c = startWorker(system, crash, knobs, { ...r.env, ...o.env, BENCH_HANG: '1' });
    const hung = await resultOf(c, `worker ${system} ${crash}`, o.timeoutMs);
    c.kill();
    await c.exited;
    if (hung.workload !== crash || !('ids' in hung)) throw new Error('unexpected crash result');
    const idsFile = join(dir, 'ids.json');
    await writeFile(idsFile, JSON.stringify(hung.ids));
    const w = startWorker(system, recover, knobs, { ...r.env, ...o.env, BENCH_IDS_FILE: idsFile });
    const result = await resultOf(w, `worker ${system} ${recover}`, o.timeoutMs);
    await w.exited;
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
    await r.release();
  }
}

/** W5: a process starts `n` runs, is SIGKILLed with all of them in flight at step 3, and a new one recovers them. */
export function runCrashResume(system: SystemName, n: number, knobs: WorkerKnobs): Promise<WorkerResult> {
  return crashThenRecover(system, 'w5-crash', 'w5-recover', knobs, { env: { BENCH_W5_RUNS: String(n) } });
}

/** W6: a process runs a `turns`-turn conversation, is SIGKILLed in flight at turn `killAt`, and a new one resumes it. */
export function runConversationCrash(system: SystemName, turns: number, killAt: number, knobs: WorkerKnobs, timeoutMs: number): Promise<WorkerResult> {
  return crashThenRecover(system, 'w6-crash', 'w6-recover', knobs, { env: { BENCH_W6_TURNS_RUN: String(turns), BENCH_W6_KILL_AT: String(killAt) }, timeoutMs });
}
