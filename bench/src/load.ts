import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { Engine } from '@ao/actors';
import { buildApp, createApiKey } from '@ao/gateway';
import { summarize } from './measure.js';
import type { Summary } from './measure.js';
import { BENCH_GRAPH } from './workload.js';

export interface LoadResult {
  /** Runs submitted, all at once, each its own POST /runs over HTTP with an API key. */
  runs: number;
  /** Where the submitting client ran (see {@link LoadClient}). */
  client: LoadClient;
  /** Each POST /runs from the request to its 202. */
  submitMs: Summary;
  /** From the first request to the last 202. */
  submitSec: number;
  /** From the first request to the last run finished. */
  elapsedSec: number;
  runsPerSec: number;
  succeeded: number;
  /** Submits that got no 202, runs that did not succeed, or runs missing from the store afterwards. */
  lost: number;
  /**
   * CPU time of the server's thread (the process's main thread: HTTP, the engine, PGlite) from the
   * first request to the last 202, ms (Linux, 10 ms resolution; undefined elsewhere).
   */
  serverCpuMs?: number;
}

/** CPU time (user + system) of this process's main thread so far, ms; undefined off Linux. */
function mainThreadCpuMs(): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 (utime, stime) in clock ticks; 100 a second on Linux.
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return undefined;
  }
}

/**
 * Where the submitting client runs and what it is: `worker` (default), `fetch` on a worker thread
 * of its own, as another process would be; `raw`, on a worker thread too, each request written as
 * bytes on a connection of its own (`node:net`), so next to none of a client library's cost
 * (undici's setting up of 1,000 requests, ~0.5 s at a load of ~10 before the first one reaches
 * the server) is in the latency: what 1,000 separate clients would send; `inline`, `fetch` on the
 * server's own thread (the bench before 2026-12-05), which adds the client's cost of 1,000
 * fetches to the server's and so to every submit's latency.
 */
export type LoadClient = 'worker' | 'raw' | 'inline';

export const loadClientOf = (env: NodeJS.ProcessEnv = process.env): LoadClient =>
  env.BENCH_LOAD_CLIENT === 'inline' ? 'inline' : env.BENCH_LOAD_CLIENT === 'raw' ? 'raw' : 'worker';

type Answer = { id?: string; ms: number };

/** `runs` submits at once from a worker thread (bench/src/load-client.mjs), with `fetch` or as raw bytes. */
async function submitFromWorker(address: string, key: string, runs: number, raw: boolean): Promise<{ answers: Answer[]; submitMs: number }> {
  const worker = new Worker(new URL('./load-client.mjs', import.meta.url), { workerData: { address, key, graph: BENCH_GRAPH, n: runs, raw } });
  try {
    return await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the load client exited (${code}) before answering`)));
    });
  } finally {
    await worker.terminate();
  }
}

/**
 * The load phase: a real gateway (auth on, a key of its own tenant, no rate limit or run cap) in
 * front of the bench's engine takes `runs` POST /runs at once; every run must end `succeeded`,
 * and the tenant's runs in the store must be exactly those.
 */
export async function loadPhase(
  engine: Engine,
  runs: number,
  timeoutMs: number,
  client: LoadClient = loadClientOf(),
  o: { finish?: boolean } = {},
): Promise<LoadResult> {
  const tenant = `load-${Date.now()}`;
  const { key } = await createApiKey(engine.apiKeys, { tenant });
  // BENCH_LOAD_CAP: the cap on a tenant's active runs (AO_MAX_ACTIVE_RUNS, 1,000 in `ao serve`); none by default.
  const app = await buildApp(engine, {
    inspectorDir: false,
    limits: { rateLimitPerMin: 0, maxActiveRuns: Number(process.env.BENCH_LOAD_CAP ?? 0), requireAuth: true },
  });
  const address = await app.listen({ port: 0, host: '127.0.0.1', backlog: 4096 });
  try {
    const cpu0 = mainThreadCpuMs();
    const t0 = performance.now();
    let lastAccepted = t0;
    const submit = async (i: number): Promise<Answer> => {
      const s = performance.now();
      const res = await fetch(`${address}/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, 'idempotency-key': `load-${i}` },
        body: JSON.stringify({ graph: BENCH_GRAPH, input: { i } }),
      });
      const ms = performance.now() - s;
      const body = (await res.json()) as { id?: string };
      lastAccepted = Math.max(lastAccepted, performance.now());
      return res.status === 202 && body.id ? { id: body.id, ms } : { ms };
    };
    let answers: Answer[];
    if (client !== 'inline') {
      const r = await submitFromWorker(address, key, runs, client === 'raw');
      answers = r.answers;
      lastAccepted = t0 + r.submitMs;
    } else answers = await Promise.all(Array.from({ length: runs }, (_, i) => submit(i)));
    const cpu1 = mainThreadCpuMs();
    const serverCpuMs = cpu0 !== undefined && cpu1 !== undefined ? cpu1 - cpu0 : undefined;
    const ids = answers.flatMap((a) => (a.id ? [a.id] : []));
    if (o.finish === false) {
      // Submits only: the runs are left to the engine's shutdown; lost counts the submits without a 202.
      const submitSec = (lastAccepted - t0) / 1000;
      return {
        runs,
        client,
        submitMs: summarize(answers.map((a) => a.ms)),
        submitSec,
        elapsedSec: NaN,
        runsPerSec: NaN,
        succeeded: 0,
        lost: runs - new Set(ids).size,
        serverCpuMs,
      };
    }
    const finished = await Promise.all(ids.map((id) => engine.waitForRun(id, timeoutMs)));
    const elapsedSec = (performance.now() - t0) / 1000;
    const succeeded = finished.filter((r) => r.status === 'succeeded').length;
    const stored = await engine.queries.countRuns(tenant, ['succeeded']);
    const lost = runs - Math.min(succeeded, stored, new Set(ids).size);
    return {
      runs,
      client,
      submitMs: summarize(answers.map((a) => a.ms)),
      submitSec: (lastAccepted - t0) / 1000,
      elapsedSec,
      runsPerSec: succeeded / elapsedSec,
      succeeded,
      lost,
      serverCpuMs,
    };
  } finally {
    await app.close();
  }
}
