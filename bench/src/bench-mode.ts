import { performance } from 'node:perf_hooks';
import type { Engine } from '@ao/actors';
import { MiB, RssSampler, summarize } from './measure.js';
import type { Summary } from './measure.js';
import type { BenchNode } from './node.js';
import { loadPhase } from './load.js';
import type { LoadResult } from './load.js';
import { replayStart } from './replay-start.js';
import { tracingCost } from './tracing.js';
import type { TracingResult } from './tracing.js';
import type { ReplayStartResult } from './replay-start.js';
import type { CommitTimes } from './timed-store.js';
import { BENCH_GRAPH, BENCH_STEPS, BENCH_STOP_GRAPH } from './workload.js';

export interface BenchOptions {
  warmupRuns: number;
  /** Sequential runs to time; fewer if `sequentialMaxSec` runs out first. */
  sequentialRuns: number;
  sequentialMaxSec: number;
  concurrency: number;
  windowSec: number;
  /** How long one run may take before the bench fails. */
  runTimeoutMs: number;
}

export interface ModeResult {
  store: 'pglite' | 'postgres';
  startupMs: number;
  /** Peak RSS while opening the store and during the warm-up runs. */
  startupPeakRssMiB: number;
  sequential: { runs: number; runMs: Summary; stepMs: Summary; peakRssMiB: number; rssBeforeMiB: number };
  throughput: {
    concurrency: number;
    windowSec: number;
    /** From the first start to the last finish: the window plus the drain of runs in flight. */
    elapsedSec: number;
    completed: number;
    runsPerSec: number;
    stepsPerSec: number;
    runMs: Summary;
    peakRssMiB: number;
  };
  events: { runsCounted: number; perRun: Summary; perStep: number; byType: Record<string, number> };
  /** Store commit wall times during the sequential phase, by whether the batch carried a checkpoint. */
  commits: {
    checkpointMs: Summary;
    otherMs: Summary;
    /** Commits per sequential run (total / runs). */
    checkpointPerRun: number;
    otherPerRun: number;
    /** Commits that threw, over the whole mode (warm-up to close); any is worth a look. */
    failed: number;
  };
  /** From the refusal that stops a run (its `budget.exceeded` envelope) to the last actor stopped. */
  stop: { runs: number; ms: Summary };
  /** Per-step overhead with tracing off and on (spans exported over OTLP/HTTP to a local receiver). */
  tracing: TracingResult;
  /** Replay start time from the last step of a short and a long run. */
  replay: ReplayStartResult;
  /** Runs submitted all at once over HTTP (auth on): submit latency, completion, none lost. */
  load?: LoadResult;
  /** The checkpoints of the sequential runs, read back with `listCheckpoints`. */
  checkpoints: {
    runsCounted: number;
    perRun: Summary;
    /** `sizeBytes` (the JSON of the checkpoint state) over every checkpoint. */
    bytes: Summary;
    /** The first run's checkpoints in step order. */
    firstRun: { step: number; node: string | null; sizeBytes: number }[];
  };
}

export class RunFailed extends Error {}

/** One run start to finish; throws unless it succeeded. Returns its id and wall time in ms. */
async function timedRun(engine: Engine, timeoutMs: number): Promise<{ id: string; ms: number }> {
  const t0 = performance.now();
  const run = await engine.startRun({ graph: BENCH_GRAPH, input: {} });
  const done = await engine.waitForRun(run.id, timeoutMs);
  const ms = performance.now() - t0;
  if (done.status !== 'succeeded') {
    throw new RunFailed(`run ${run.id} ended ${done.status}${done.error ? `: ${JSON.stringify(done.error)}` : ''}`);
  }
  return { id: run.id, ms };
}

/** The sequential phase; store commits are timed into `commits` while it runs (and only then). */
async function sequential(
  engine: Engine,
  commits: CommitTimes,
  o: BenchOptions,
): Promise<{ ids: string[]; result: ModeResult['sequential']; commits: Omit<ModeResult['commits'], 'failed'> }> {
  const rssBefore = process.memoryUsage.rss();
  const sampler = new RssSampler();
  const ids: string[] = [];
  const times: number[] = [];
  const deadline = performance.now() + o.sequentialMaxSec * 1000;
  let peak: number;
  commits.reset();
  commits.recording = true;
  try {
    while (times.length < o.sequentialRuns && performance.now() < deadline) {
      const r = await timedRun(engine, o.runTimeoutMs);
      ids.push(r.id);
      times.push(r.ms);
    }
  } finally {
    commits.recording = false;
    peak = sampler.stop();
  }
  return {
    ids,
    commits: {
      checkpointMs: summarize(commits.withCheckpoint),
      otherMs: summarize(commits.withoutCheckpoint),
      checkpointPerRun: commits.withCheckpoint.length / times.length,
      otherPerRun: commits.withoutCheckpoint.length / times.length,
    },
    result: {
      runs: times.length,
      runMs: summarize(times),
      stepMs: summarize(times.map((t) => t / BENCH_STEPS)),
      peakRssMiB: peak / MiB,
      rssBeforeMiB: rssBefore / MiB,
    },
  };
}

/** `concurrency` workers, each starting its next run as soon as its last one finished. */
async function throughput(engine: Engine, o: BenchOptions): Promise<ModeResult['throughput']> {
  const sampler = new RssSampler();
  const start = performance.now();
  const deadline = start + o.windowSec * 1000;
  const times: number[] = [];
  let end = start;
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const r = await timedRun(engine, o.runTimeoutMs);
      times.push(r.ms);
      end = performance.now();
    }
  };
  let peak: number;
  try {
    await Promise.all(Array.from({ length: o.concurrency }, worker));
  } finally {
    peak = sampler.stop();
  }
  /*
   * Runs started in the window are all awaited and counted over the time until the last one
   * finished. Counting only those done by the deadline would quantise the rate: runs under load
   * move in step and finish in waves of `concurrency`.
   */
  const elapsedSec = (end - start) / 1000;
  const runsPerSec = times.length / elapsedSec;
  return {
    concurrency: o.concurrency,
    windowSec: o.windowSec,
    elapsedSec,
    completed: times.length,
    runsPerSec,
    stepsPerSec: runsPerSec * BENCH_STEPS,
    runMs: summarize(times),
    peakRssMiB: peak / MiB,
  };
}

/**
 * Stop latency: runs of the stop workload, each ended by a budget refusal; measured from the time
 * of its `budget.exceeded` envelope to the moment the engine no longer hosts the run (every actor
 * of its tree stopped). Both are wall-clock times of this process.
 */
async function stopLatency(engine: Engine, runs: number, timeoutMs: number): Promise<ModeResult['stop']> {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const run = await engine.startRun({ graph: BENCH_STOP_GRAPH, input: { i } });
    const done = await engine.waitForRun(run.id, timeoutMs);
    const stoppedAt = Date.now();
    if (done.status !== 'budget_exceeded') throw new RunFailed(`stop run ${run.id} ended ${done.status}, not budget_exceeded`);
    if (engine.liveActors(run.id) !== 0) throw new RunFailed(`stop run ${run.id} left actors alive`);
    const refusal = (await engine.queries.listEventsOfType(run.id, 'budget.exceeded'))[0];
    if (!refusal) throw new RunFailed(`stop run ${run.id} has no budget.exceeded event`);
    ms.push(stoppedAt - Date.parse(refusal.time));
  }
  return { runs: ms.length, ms: summarize(ms) };
}

/** Events each run wrote, paged through the event log; the by-type breakdown is the first run's. */
async function countEvents(engine: Engine, ids: readonly string[]): Promise<ModeResult['events']> {
  const counts: number[] = [];
  const byType: Record<string, number> = {};
  for (const [i, id] of ids.entries()) {
    let after = 0;
    let n = 0;
    for (;;) {
      const page = await engine.listEvents(id, { after, limit: 500 });
      n += page.length;
      if (i === 0) for (const e of page) byType[e.type] = (byType[e.type] ?? 0) + 1;
      const last = page.at(-1);
      if (!last || page.length < 500) break;
      after = last.seq;
    }
    counts.push(n);
  }
  const perRun = summarize(counts);
  return { runsCounted: counts.length, perRun, perStep: perRun.mean / BENCH_STEPS, byType };
}

/** The checkpoints each run wrote and their sizes, from `listCheckpoints`. */
async function countCheckpoints(node: BenchNode, ids: readonly string[]): Promise<ModeResult['checkpoints']> {
  const perRun: number[] = [];
  const bytes: number[] = [];
  let firstRun: ModeResult['checkpoints']['firstRun'] = [];
  for (const [i, id] of ids.entries()) {
    const cps = await node.engine.queries.listCheckpoints(id);
    perRun.push(cps.length);
    for (const c of cps) bytes.push(c.sizeBytes);
    if (i === 0) firstRun = cps.map((c) => ({ step: c.step, node: c.node, sizeBytes: c.sizeBytes }));
  }
  return { runsCounted: perRun.length, perRun: summarize(perRun), bytes: summarize(bytes), firstRun };
}

/**
 * The phases for one store: warm-up, sequential latency, fixed-window throughput, then the event
 * and checkpoint counts of the sequential runs (outside any timed section).
 */
export async function benchMode(store: ModeResult['store'], open: () => Promise<BenchNode>, o: BenchOptions, log: (s: string) => void): Promise<ModeResult> {
  const startupSampler = new RssSampler();
  const t0 = performance.now();
  let runtime: BenchNode;
  try {
    runtime = await open();
  } catch (e) {
    startupSampler.stop();
    throw e;
  }
  const startupMs = performance.now() - t0;
  try {
    log(`  started in ${startupMs.toFixed(0)} ms; warm-up ${o.warmupRuns} runs`);
    let startupPeak: number;
    try {
      for (let i = 0; i < o.warmupRuns; i++) await timedRun(runtime.engine, o.runTimeoutMs);
    } finally {
      startupPeak = startupSampler.stop();
    }
    log(`  sequential: up to ${o.sequentialRuns} runs (cap ${o.sequentialMaxSec} s)`);
    const seq = await sequential(runtime.engine, runtime.commits, o);
    log(`  throughput: ${o.windowSec} s window at concurrency ${o.concurrency}`);
    const thr = await throughput(runtime.engine, o);
    log('  stop latency: 30 runs ended by a budget refusal');
    const stop = await stopLatency(runtime.engine, 30, o.runTimeoutMs);
    log('  tracing: off/on alternation, 4 x 25 runs each');
    const tracing = await tracingCost(runtime.engine, 4, 25, o.runTimeoutMs);
    log('  replay start: a short and a long loop, replayed from their last step');
    const replay = await replayStart(runtime.engine, o.runTimeoutMs);
    const loadRuns = Number(process.env.BENCH_LOAD_RUNS ?? 1000);
    log(`  load: ${loadRuns} runs submitted at once over HTTP`);
    const load = await loadPhase(runtime.engine, loadRuns, 300_000);
    log('  counting events and checkpoints');
    const events = await countEvents(runtime.engine, seq.ids);
    const checkpoints = await countCheckpoints(runtime, seq.ids);
    return {
      store,
      startupMs,
      startupPeakRssMiB: startupPeak / MiB,
      sequential: seq.result,
      throughput: thr,
      events,
      commits: { ...seq.commits, failed: runtime.commits.failed },
      checkpoints,
      stop,
      replay,
      tracing,
      load,
    };
  } finally {
    await runtime.close();
  }
}
