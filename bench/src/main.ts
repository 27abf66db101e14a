import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { benchMode } from './bench-mode.js';
import { clusterBench } from './cluster.js';
import type { BenchOptions } from './bench-mode.js';
import { intEnv, machineInfo } from './env.js';
import { openBenchNode } from './node.js';
import { createScratchDatabase, redact } from './postgres.js';
import { renderMarkdown, renderText } from './report.js';
import { renderServe, serveBench } from './serve.js';
import { renderWaiting, waitingBench } from './waiting.js';
import type { BenchReport, ModeOutcome } from './report.js';

const RESULTS_MD = fileURLToPath(new URL('../RUNTIME-RESULTS.md', import.meta.url));
const RESULTS_JSONL = fileURLToPath(new URL('../results.jsonl', import.meta.url));
/** What follows this line in RUNTIME-RESULTS.md is written by hand (before/after comparisons) and kept when the bench rewrites the file. */
const KEPT_MARKER = '<!-- Kept when bench:runtime rewrites this file: everything below this line. -->';

/** The hand-written part of a results file (from the marker on), or nothing. */
async function keptPart(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const at = text.indexOf(KEPT_MARKER);
  return at < 0 ? '' : `\n${text.slice(at)}`;
}

/** Defaults keep both modes under ~2 minutes on 2 cores; env vars override for quick checks. */
function options(): BenchOptions {
  return {
    warmupRuns: intEnv('BENCH_WARMUP', 20),
    sequentialRuns: intEnv('BENCH_RUNS', 200),
    sequentialMaxSec: intEnv('BENCH_SEQ_MAX_SEC', 25),
    concurrency: intEnv('BENCH_CONCURRENCY', 16),
    windowSec: intEnv('BENCH_WINDOW_SEC', 10),
    runTimeoutMs: 60_000,
  };
}

async function main(): Promise<void> {
  const started = performance.now();
  const o = options();
  const log = (s: string): void => console.log(s);
  const modes: ModeOutcome[] = [];
  const dataDir = await mkdtemp(join(tmpdir(), 'ao-bench-'));
  try {
    log(`[bench] PGlite (file-backed in ${dataDir})`);
    modes.push(await benchMode('pglite', () => openBenchNode({ AO_DATA_DIR: dataDir }), o, log));

    const db = await createScratchDatabase();
    if (!db.ok) {
      log(`[bench] Postgres skipped: ${db.reason}`);
      modes.push({ store: 'postgres', skipped: db.reason });
    } else {
      log(`[bench] Postgres (${redact(db.url)})`);
      try {
        modes.push(await benchMode('postgres', () => openBenchNode({ AO_DATA_DIR: dataDir, DATABASE_URL: db.url }), o, log));
      } finally {
        await db.drop();
      }
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }

  log('[bench] cluster: 1, 2 and 3 ao node processes on NATS JetStream + Postgres');
  const cluster = await clusterBench({
    counts: [1, 2, 3],
    sequentialRuns: intEnv('BENCH_CLUSTER_RUNS', 40),
    concurrency: o.concurrency,
    windowSec: o.windowSec,
    log,
  });
  log('[bench] ao serve: start, idle RSS, ao runs');
  const serve = await serveBench({ rounds: intEnv('BENCH_SERVE_ROUNDS', 2) });
  const waiting = await waitingBench({ runs: intEnv('BENCH_WAITING_RUNS', 10_000), concurrency: 32, answer: 200, log });
  const report: BenchReport = { machine: machineInfo(), options: o, modes, cluster, serve, totalSec: (performance.now() - started) / 1000 };
  log('');
  log(renderText(report));
  log(renderServe(serve));
  log(renderWaiting(waiting));
  await writeFile(RESULTS_MD, `${renderMarkdown(report)}\n${renderServe(serve)}\n${renderWaiting(waiting)}${await keptPart(RESULTS_MD)}`);
  await appendFile(RESULTS_JSONL, `${JSON.stringify(report)}\n`);
  log(`\nwrote ${RESULTS_MD} and appended to ${RESULTS_JSONL}`);
}

main().then(
  () => {
    // Everything was closed, so the process should exit by itself; say so loudly if it does not.
    setTimeout(() => {
      console.error('[bench] handles still open 5 s after the bench finished; exiting');
      process.exit(2);
    }, 5000).unref();
  },
  (e: unknown) => {
    console.error('[bench] failed:', e instanceof Error ? (e.stack ?? e.message) : e);
    process.exitCode = 1;
    setTimeout(() => process.exit(1), 5000).unref();
  },
);
