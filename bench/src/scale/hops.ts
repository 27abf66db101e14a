import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startRuntime } from '@ao/gateway';
import type { Runtime } from '@ao/gateway';
import { loadConfig } from '@ao/runtime';
import { dropNatsPrefix, natsPrefix } from '@ao/runtime/testing';
import { GRAPHS, startNode, stop } from '../cluster.js';
import { graphs } from '../cluster-graphs.js';
import { summarize } from '../measure.js';
import type { Summary } from '../measure.js';
import { createScratchDatabase } from '../postgres.js';
import { BENCH_GRAPH, BENCH_STEPS } from '../workload.js';

/** What the hop measurement was given. */
export interface HopSettings {
  /** Warm-up runs of each side, not timed. */
  warmupRuns: number;
  /** Timed runs of each side, alternated: embedded, cluster, embedded, ... */
  runs: number;
  natsUrl: string;
}

/** One side of the hop measurement: per-step times of its runs, one at a time. */
export interface HopSide {
  /** From the run row: (`finishedAt` - `createdAt`) / steps. */
  stepMs: Summary;
  /** As the submitter saw it: (`startRun` to `waitForRun` returning) / steps. */
  seenStepMs: Summary;
}

export interface HopResult {
  settings: HopSettings;
  embedded: HopSide;
  cluster: HopSide;
}

async function oneRun(rt: Runtime): Promise<{ step: number; seen: number }> {
  const t0 = performance.now();
  const run = await rt.engine.startRun({ graph: BENCH_GRAPH, input: {} });
  const done = await rt.engine.waitForRun(run.id, 60_000);
  const seen = performance.now() - t0;
  if (done.status !== 'succeeded') throw new Error(`run ${run.id} ended ${done.status}`);
  return { step: (Date.parse(done.finishedAt ?? done.updatedAt) - Date.parse(done.createdAt)) / BENCH_STEPS, seen: seen / BENCH_STEPS };
}

/**
 * What the cluster's hops cost one run, with nothing to hide them: the offline model at 0 ms, no
 * CPU quota, one run at a time. Embedded (in-process bus, its own Postgres database) against one
 * `ao node` behind a gateway without a node (the bench process, which starts each run and follows
 * it by its run signals over NATS; another database, the same server). Both are up together and
 * their runs alternate, so a change in the machine's load falls on both.
 */
export async function hopBench(s: HopSettings, log: (s: string) => void): Promise<HopResult | { skipped: string }> {
  const dbE = await createScratchDatabase();
  if (!dbE.ok) return { skipped: dbE.reason };
  const dbC = await createScratchDatabase();
  if (!dbC.ok) {
    await dbE.drop();
    return { skipped: dbC.reason };
  }
  const dirE = await mkdtemp(join(tmpdir(), 'ao-bench-hops-'));
  const dirC = await mkdtemp(join(tmpdir(), 'ao-bench-hops-'));
  const prefix = natsPrefix('hops');
  let embedded: Runtime | undefined;
  let gateway: Runtime | undefined;
  let node: ChildProcess | undefined;
  try {
    embedded = await startRuntime(
      loadConfig({ DATABASE_URL: dbE.url, AO_DATA_DIR: dirE, AO_LLM_LATENCY_MS: '0', AO_NODE_ID: 'bench-embedded', AO_LOG_LEVEL: 'warn' }),
      { graphs },
    );
    const env = { DATABASE_URL: dbC.url, NATS_URL: s.natsUrl, AO_NATS_PREFIX: prefix, AO_DATA_DIR: dirC, AO_LLM_LATENCY_MS: '0', AO_GRAPHS: GRAPHS };
    gateway = await startRuntime(loadConfig({ ...env, AO_NODE_ID: 'bench-gateway', AO_LOG_LEVEL: 'warn' }), { passive: true, graphs });
    node = await startNode({ ...env, AO_NODE_ID: 'bench-hop-node' });
    log(`  hops: embedded and 1 \`ao node\` behind a gateway, model at 0 ms, no quota: ${s.warmupRuns} warm-up runs each, then ${s.runs} each, alternated`);
    for (let i = 0; i < s.warmupRuns; i++) {
      await oneRun(embedded);
      await oneRun(gateway);
    }
    const e: Array<{ step: number; seen: number }> = [];
    const c: Array<{ step: number; seen: number }> = [];
    for (let i = 0; i < s.runs; i++) {
      e.push(await oneRun(embedded));
      c.push(await oneRun(gateway));
    }
    const side = (xs: Array<{ step: number; seen: number }>): HopSide => ({
      stepMs: summarize(xs.map((x) => x.step)),
      seenStepMs: summarize(xs.map((x) => x.seen)),
    });
    const r: HopResult = { settings: s, embedded: side(e), cluster: side(c) };
    log(
      `    per-step p50 ${r.embedded.stepMs.p50.toFixed(1)} ms embedded, ${r.cluster.stepMs.p50.toFixed(1)} ms in the cluster (${(r.cluster.stepMs.p50 / r.embedded.stepMs.p50).toFixed(2)}×); as seen: ${r.embedded.seenStepMs.p50.toFixed(1)} / ${r.cluster.seenStepMs.p50.toFixed(1)} ms`,
    );
    return r;
  } finally {
    if (node) await stop(node);
    await gateway?.close();
    await embedded?.close();
    await dbE.drop();
    await dbC.drop();
    await dropNatsPrefix(prefix, s.natsUrl);
    await rm(dirE, { recursive: true, force: true });
    await rm(dirC, { recursive: true, force: true });
  }
}
