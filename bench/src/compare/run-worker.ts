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
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
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

/** One worker on fresh resources, released afterwards. */
export async function runWorker(system: SystemName, workload: Workload, knobs: WorkerKnobs): Promise<WorkerResult> {
  const r = await resources(system);
  try {
    const w = startWorker(system, workload, knobs, r.env);
    const result = await w.result;
    await w.exited;
    return result;
  } finally {
    await r.release();
  }
}

/** W5: a process starts `n` runs, is SIGKILLed with all of them in flight at step 3, and a new one recovers them. */
export async function runCrashResume(system: SystemName, n: number, knobs: WorkerKnobs): Promise<WorkerResult> {
  const r = await resources(system);
  const dir = await mkdtemp(join(tmpdir(), 'ao-cmp-w5-'));
  try {
    const crash = startWorker(system, 'w5-crash', knobs, { ...r.env, BENCH_HANG: '1', BENCH_W5_RUNS: String(n) });
    const hung = await crash.result;
    crash.kill();
    await crash.exited;
    if (hung.workload !== 'w5-crash') throw new Error('unexpected crash result');
    const idsFile = join(dir, 'ids.json');
    await writeFile(idsFile, JSON.stringify(hung.ids));
    const w = startWorker(system, 'w5-recover', knobs, { ...r.env, BENCH_W5_IDS_FILE: idsFile });
    const result = await w.result;
    await w.exited;
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
    await r.release();
  }
}
