import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

/**
 * `ao serve` as `pnpm start` runs it (`node scripts/ao.mjs serve`: the bundled CLI, embedded
 * store), measured from outside as a user sees it: time from spawn to the first 200 of `/health`,
 * RSS once it has been idle a while, and the time of `ao runs` (a separate process that finds the
 * server through the data directory's lock) to exit. Each trial starts on a new data directory
 * (copied from the cached template) and then again on the same one. Also the `bench:serve`
 * command (`pnpm --filter @ao/bench bench:serve [repository root]`) for before/after runs against
 * another checkout.
 */
export interface ServeTrial {
  dataDir: 'new' | 'existing';
  /** Spawn to the first 200 of `/health`. */
  startMs: number;
  /** RSS of the server process after `idleMs` without requests (VmRSS). */
  idleRssMiB: number;
  /** The most RSS the process held (VmHWM), start-up included. */
  peakRssMiB: number;
  /** `ao runs` with the server up: spawn to exit. */
  aoRunsMs: number;
}

export interface ServeResult {
  trials: ServeTrial[];
  idleMs: number;
}

const DEFAULT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** VmRSS and VmHWM of `pid` in MiB (Linux). */
function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs `node scripts/ao.mjs ...args` in `root` to its exit; returns the time it took. */
function runAo(root: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(process.execPath, [join(root, 'scripts', 'ao.mjs'), ...args], { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (b: Buffer) => (err += b.toString()));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`ao ${args.join(' ')} exited ${code}: ${err}`))));
  });
}

/**
 * The node flags `pnpm start` gives the server (package.json's `start`: `node <flags> scripts/ao.mjs
 * serve`), so the bench measures the process a user starts. A checkout whose start script has
 * none gets none.
 */
export function startNodeFlags(root: string): string[] {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts?: Record<string, string> };
  const m = /\bnode((?: --[\w-]+(?:=\S+)?)*) scripts\/ao\.mjs serve\b/.exec(pkg.scripts?.start ?? '');
  return m?.[1]?.trim().split(' ').filter(Boolean) ?? [];
}

async function trial(root: string, dataDir: string, kind: ServeTrial['dataDir'], idleMs: number): Promise<ServeTrial> {
  const port = await freePort();
  const env = { ...process.env, AO_DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', AO_GRAPHS: '', AO_LOG_LEVEL: 'warn' };
  const t0 = performance.now();
  const args = [...startNodeFlags(root), join(root, 'scripts', 'ao.mjs'), 'serve'];
  const proc = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  proc.stderr.on('data', (b: Buffer) => (log += b.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  let gone = false;
  void exited.then(() => (gone = true));
  try {
    for (;;) {
      if (gone) throw new Error(`ao serve exited ${proc.exitCode}: ${log}`);
      const ok = await fetch(`http://127.0.0.1:${port}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      await sleep(20);
    }
    const startMs = performance.now() - t0;
    await sleep(idleMs);
    const mem = memoryOf(proc.pid!);
    const aoRunsMs = await runAo(root, ['runs'], env);
    return { dataDir: kind, startMs, idleRssMiB: mem.rss, peakRssMiB: mem.hwm, aoRunsMs };
  } finally {
    if (!gone) proc.kill('SIGINT');
    await exited;
  }
}

/** `rounds` pairs of trials (a new data directory, then the same one again), each its own process. */
export async function serveBench(o: { root?: string; rounds?: number; idleMs?: number } = {}): Promise<ServeResult> {
  const root = o.root ?? DEFAULT_ROOT;
  const idleMs = o.idleMs ?? 5_000;
  // Build the CLI first if its sources changed (the launcher does it once; not what is measured).
  await runAo(root, ['--help'], { ...process.env, AO_GRAPHS: '' });
  const trials: ServeTrial[] = [];
  for (let i = 0; i < (o.rounds ?? 2); i++) {
    const parent = await mkdtemp(join(tmpdir(), 'ao-bench-serve-'));
    try {
      const dataDir = join(parent, 'data');
      trials.push(await trial(root, dataDir, 'new', idleMs));
      trials.push(await trial(root, dataDir, 'existing', idleMs));
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  }
  return { trials, idleMs };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Medians per kind of data directory. */
export function summarizeServe(r: ServeResult): Record<ServeTrial['dataDir'], Omit<ServeTrial, 'dataDir'> & { n: number }> {
  const of = (kind: ServeTrial['dataDir']) => {
    const t = r.trials.filter((x) => x.dataDir === kind);
    return {
      n: t.length,
      startMs: median(t.map((x) => x.startMs)),
      idleRssMiB: median(t.map((x) => x.idleRssMiB)),
      peakRssMiB: median(t.map((x) => x.peakRssMiB)),
      aoRunsMs: median(t.map((x) => x.aoRunsMs)),
    };
  };
  return { new: of('new'), existing: of('existing') };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = process.argv[2] ?? DEFAULT_ROOT;
  const rounds = Number(process.env.BENCH_SERVE_ROUNDS ?? 2);
  serveBench({ root, rounds }).then(
    (r) => {
      const round = (n: number) => Math.round(n);
      for (const t of r.trials)
        console.log(
          JSON.stringify({
            root,
            ...t,
            startMs: round(t.startMs),
            aoRunsMs: round(t.aoRunsMs),
            idleRssMiB: round(t.idleRssMiB),
            peakRssMiB: round(t.peakRssMiB),
          }),
        );
    },
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}

/** The markdown section of `bench:runtime`'s results for {@link serveBench}. */
export function renderServe(r: ServeResult): string {
  const s = summarizeServe(r);
  const f = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
  return [
    '## `ao serve` as `pnpm start` runs it (embedded store)',
    '',
    `\`node scripts/ao.mjs serve\` (the bundled CLI, built before timing) in its own process, ${r.trials.length / 2} times on a new data directory (a copy of the cached template) and each time again on the same one; medians. Start: spawn to the first 200 of \`/health\` (pnpm's own start and the inspector's build check, which \`pnpm start\` adds, not included). Idle RSS: VmRSS after ${r.idleMs / 1000} s without requests; peak: VmHWM. \`ao runs\`: a second process, which finds the server through the data directory's lock, from spawn to exit.`,
    '',
    '| data directory | start to /health (ms) | idle RSS (MiB) | peak RSS (MiB) | `ao runs` (ms) |',
    '|---|---:|---:|---:|---:|',
    `| new | ${f(s.new.startMs)} | ${f(s.new.idleRssMiB)} | ${f(s.new.peakRssMiB)} | ${f(s.new.aoRunsMs)} |`,
    `| existing | ${f(s.existing.startMs)} | ${f(s.existing.idleRssMiB)} | ${f(s.existing.peakRssMiB)} | ${f(s.existing.aoRunsMs)} |`,
    '',
  ].join('\n');
}
