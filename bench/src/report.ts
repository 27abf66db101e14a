import type { BenchOptions, ModeResult } from './bench-mode.js';
import type { ClusterResult } from './cluster.js';
import type { MachineInfo } from './env.js';
import { BENCH_GRAPH, BENCH_STEPS } from './workload.js';

export type ModeOutcome = ModeResult | { store: ModeResult['store']; skipped: string };

export interface BenchReport {
  machine: MachineInfo;
  options: BenchOptions;
  modes: ModeOutcome[];
  /** Runs/s and per-step overhead with 1, 2 and 3 node processes on NATS + Postgres. */
  cluster?: ClusterResult;
  totalSec: number;
}

const LABELS: Record<ModeResult['store'], string> = { pglite: 'PGlite (file)', postgres: 'Postgres' };

const ms = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const int = (x: number): string => (Number.isFinite(x) ? x.toFixed(0) : 'n/a');
const one = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');

/** Metric rows, one column per store mode. */
function rows(modes: ModeResult[]): string[][] {
  const r = (label: string, f: (m: ModeResult) => string): string[] => [label, ...modes.map(f)];
  return [
    r('startup: open store + migrate (ms)', (m) => int(m.startupMs)),
    r('startup + warm-up: peak RSS (MiB)', (m) => int(m.startupPeakRssMiB)),
    r('sequential: runs timed', (m) => String(m.sequential.runs)),
    r('sequential: run p50 / p99 / mean (ms)', (m) => `${ms(m.sequential.runMs.p50)} / ${ms(m.sequential.runMs.p99)} / ${ms(m.sequential.runMs.mean)}`),
    r('**overhead per step** p50 / p99 / mean (ms)', (m) => `${ms(m.sequential.stepMs.p50)} / ${ms(m.sequential.stepMs.p99)} / ${ms(m.sequential.stepMs.mean)}`),
    r('sequential: peak RSS (MiB)', (m) => int(m.sequential.peakRssMiB)),
    r('sequential: store commits per run, with / without checkpoint', (m) => `${one(m.commits.checkpointPerRun)} / ${one(m.commits.otherPerRun)}`),
    r('**checkpoint write per step** p50 / p99 (ms)', (m) => `${ms(m.commits.checkpointMs.p50)} / ${ms(m.commits.checkpointMs.p99)}`),
    r('commit without checkpoint p50 / p99 (ms)', (m) => `${ms(m.commits.otherMs.p50)} / ${ms(m.commits.otherMs.p99)}`),
    r('store commits that failed (whole mode)', (m) => String(m.commits.failed)),
    r(`throughput: concurrency`, (m) => String(m.throughput.concurrency)),
    r('throughput: runs completed (window + drain)', (m) => `${m.throughput.completed} in ${one(m.throughput.elapsedSec)} s`),
    r('**throughput: runs/s**', (m) => one(m.throughput.runsPerSec)),
    r('**throughput: steps/s**', (m) => one(m.throughput.stepsPerSec)),
    r('throughput: run p50 / p99 under load (ms)', (m) => `${ms(m.throughput.runMs.p50)} / ${ms(m.throughput.runMs.p99)}`),
    r('throughput: peak RSS (MiB)', (m) => int(m.throughput.peakRssMiB)),
    r('events written per run (mean; min-max)', (m) => `${one(m.events.perRun.mean)}; ${m.events.perRun.min}-${m.events.perRun.max}`),
    r('events written per step', (m) => one(m.events.perStep)),
    r('checkpoints per run (mean; min-max)', (m) => `${one(m.checkpoints.perRun.mean)}; ${m.checkpoints.perRun.min}-${m.checkpoints.perRun.max}`),
    r('bytes per checkpoint mean / max', (m) => `${int(m.checkpoints.bytes.mean)} / ${int(m.checkpoints.bytes.max)}`),
    r('**budget stop latency** p50 / p99 (ms), refusal to last actor stopped', (m) => `${ms(m.stop.ms.p50)} / ${ms(m.stop.ms.p99)} (${m.stop.runs} runs)`),
    r('**per-step overhead, tracing off / on** p50 (ms)', (m) => (m.tracing ? `${ms(m.tracing.off.p50)} / ${ms(m.tracing.on.p50)}` : 'n/a')),
    r('  tracing off / on p99 (ms); spans exported', (m) => (m.tracing ? `${ms(m.tracing.off.p99)} / ${ms(m.tracing.on.p99)}; ${m.tracing.spansExported}` : 'n/a')),
    r('**load: runs submitted at once** over HTTP; lost', (m) => (m.load ? `${m.load.runs}; ${m.load.lost}` : 'n/a')),
    r('**load: submit latency** p50 / p99 (ms)', (m) => (m.load ? `${ms(m.load.submitMs.p50)} / ${ms(m.load.submitMs.p99)}` : 'n/a')),
    r('load: all accepted in / all finished in (s); runs/s', (m) => (m.load ? `${one(m.load.submitSec)} / ${one(m.load.elapsedSec)}; ${one(m.load.runsPerSec)}` : 'n/a')),
    ...(modes[0]?.replay?.runs ?? []).flatMap((_, i) => [
      r(`**replay start** of a ${modes[0]!.replay.runs[i]!.steps}-step run from step ${modes[0]!.replay.runs[i]!.fromStep}, live p50 / p99 (ms)`, (m) => replayCell(m, i, 'live', 'startMs')),
      r(`  same, recorded p50 / p99 (ms)`, (m) => replayCell(m, i, 'recorded', 'startMs')),
      r(`  replay call to its first new event, live p50 (ms)`, (m) => ms(m.replay?.runs[i]?.live.firstEventMs.p50 ?? Number.NaN)),
    ]),
  ];
}

function replayCell(m: ModeResult, i: number, mode: 'live' | 'recorded', k: 'startMs' | 'totalMs'): string {
  const s = m.replay?.runs[i]?.[mode][k];
  return s ? `${ms(s.p50)} / ${ms(s.p99)}` : 'n/a';
}

/** A pipe table with padded columns: valid Markdown and readable as plain text. */
export function table(header: string[], body: string[][]): string {
  const all = [header, ...body];
  const widths = header.map((_, c) => Math.max(3, ...all.map((row) => (row[c] ?? '').length)));
  const line = (row: string[]): string => `| ${row.map((cell, c) => cell.padEnd(widths[c] ?? 0)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n');
}

function completed(modes: ModeOutcome[]): ModeResult[] {
  return modes.filter((m): m is ModeResult => !('skipped' in m));
}

function skippedNotes(modes: ModeOutcome[]): string[] {
  return modes.flatMap((m) => ('skipped' in m ? [`${LABELS[m.store]}: skipped (${m.skipped})`] : []));
}

/** The cluster table: one row per node count. */
function clusterSection(c: ClusterResult | undefined): string[] {
  if (!c) return [];
  if ('skipped' in c) return [`Cluster: skipped (${c.skipped})`];
  return [
    table(
      ['ao node processes', 'per-step overhead p50 / p99 (ms), one run at a time', 'runs/s at concurrency', 'steps/s', 'runs completed'],
      c.points.map((p) => [String(p.nodes), `${ms(p.stepMs.p50)} / ${ms(p.stepMs.p99)} (${p.sequentialRuns} runs)`, `${one(p.runsPerSec)} (${p.concurrency})`, one(p.stepsPerSec), `${p.completed} in ${one(p.elapsedSec)} s`]),
    ),
  ];
}

/** The results table as printed to stdout. */
export function renderText(report: BenchReport): string {
  const done = completed(report.modes);
  const parts = [table(['metric', ...done.map((m) => LABELS[m.store])], rows(done).map((r) => r.map((c) => c.replaceAll('**', ''))))];
  parts.push(...skippedNotes(report.modes));
  for (const m of done) parts.push(`${LABELS[m.store]} events of one run by type: ${formatByType(m.events.byType)}`);
  for (const m of done) parts.push(`${LABELS[m.store]} checkpoints of one run: ${formatCheckpoints(m.checkpoints.firstRun)}`);
  parts.push(...clusterSection(report.cluster).map((x) => x.replaceAll('**', '')));
  parts.push(`total bench time ${report.totalSec.toFixed(1)} s`);
  return parts.join('\n');
}

function formatByType(byType: Record<string, number>): string {
  return Object.entries(byType)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([t, n]) => `${t} ${n}`)
    .join(', ');
}

function formatCheckpoints(cps: ModeResult['checkpoints']['firstRun']): string {
  return cps.length ? cps.map((c) => `step ${c.step} (${c.node ?? '-'}) ${c.sizeBytes} B`).join(', ') : 'none';
}

/** bench/RESULTS.md: header (date, machine, versions), the table, how it was measured. */
export function renderMarkdown(report: BenchReport): string {
  const { machine: mc, options: o } = report;
  const done = completed(report.modes);
  const skipped = skippedNotes(report.modes);
  return [
    '# Benchmark results: our runtime alone (`pnpm --filter @ao/bench bench:runtime`)',
    '',
    'Written by `pnpm --filter @ao/bench bench:runtime` (bench/src/main.ts); overwritten on every run. History: `bench/results.jsonl`.',
    '',
    `- Date: ${mc.date}`,
    `- Machine: ${mc.cpu}, ${mc.cores} cores, ${mc.memoryGiB} GiB RAM, ${mc.os}`,
    `- Node: ${mc.node}`,
    `- Packages: ${Object.entries(mc.packages).map(([n, v]) => `${n} ${v}`).join(', ')}`,
    '',
    '## Results',
    '',
    done.length ? table(['metric', ...done.map((m) => LABELS[m.store])], rows(done)) : '_No store mode completed._',
    '',
    ...(skipped.length ? [...skipped.map((s) => `- ${s}`), ''] : []),
    'Events of one run, by type:',
    '',
    ...done.map((m) => `- ${LABELS[m.store]}: ${formatByType(m.events.byType)}`),
    '',
    'Checkpoints of one run (step, node, size of the state JSON):',
    '',
    ...done.map((m) => `- ${LABELS[m.store]}: ${formatCheckpoints(m.checkpoints.firstRun)}`),
    '',
    '## Cluster (NATS JetStream + Postgres)',
    '',
    ...clusterSection(report.cluster),
    '',
    'The bench process is a gateway without a node: it enqueues runs of the same 5-step workload and follows their rows (polling with backoff from 10 ms, which adds to each run\'s time); ' +
      'N `ao node` processes (N = 1, 2, 3; offline LLM at 0 ms) take them from the JetStream work queue and host them. Per-node concurrency: each node keeps up to 64 unacknowledged queue items and hosts every run it takes, so the load is set by the submitter: ' +
      `${report.options.concurrency} runs in flight for ${report.options.windowSec} s. All processes share this machine's cores with Postgres and nats-server, so adding nodes adds no CPU here: these figures show the cost of the NATS hop and of coordination, not scale-out headroom.`,
    '',
    `Whole bench: ${report.totalSec.toFixed(1)} s.`,
    '',
    '## How measured',
    '',
    `One process, one runtime node per store mode, wired as \`startRuntime\` in gateway/src/node.ts wires it (store adapter, in-process bus, builtin tools, \`Engine.create\`) with the offline LLM at 0 ms latency, ` +
      `except that the engine is handed the store through a decorator that times \`commit\` (bench/src/timed-store.ts); no runtime code is changed. ` +
      `The workload is the graph \`${BENCH_GRAPH}\`: ${BENCH_STEPS} sequential \`pipeline\` steps, each calling the \`noop\` tool once (via \`args\`) and then the offline LLM once, ` +
      `so what is timed is the orchestration itself (actors, journal appends, store commits, bus delivery). ` +
      `PGlite is file-backed in a fresh temp directory; Postgres is a fresh \`ao_bench_*\` database on the local server, dropped afterwards. ` +
      `Each mode first runs ${o.warmupRuns} warm-up runs. **Sequential**: up to ${o.sequentialRuns} runs one at a time (capped at ${o.sequentialMaxSec} s), ` +
      `each timed from \`startRun\` to \`waitForRun\` returning; overhead per step is that time / ${BENCH_STEPS}; percentiles are nearest-rank. ` +
      `**Throughput**: ${o.concurrency} runs kept in flight (each worker starts a new run when its last one ends) until a ${o.windowSec} s window closes; ` +
      `the runs still in flight then are awaited, and runs/s = all runs started in the window / time from the first start to the last finish ` +
      `(counting only runs done by the deadline would quantise the rate, as runs under load finish in waves); steps/s = runs/s x ${BENCH_STEPS}. ` +
      `**Memory**: process RSS sampled every 50 ms during each phase, peak reported; RSS is whole-process and moves with GC timing, and Postgres runs after PGlite in the same process, so compare memory within a mode across runs rather than across modes. ` +
      `**Commits**: during the sequential phase only, every \`Store.commit\` call the runtime makes is timed from the call until its promise settles (so a commit waiting for the connection counts its wait), ` +
      `split into commits whose batch carries a checkpoint (the run supervisor's one commit per step: its events, the run row patch and the checkpoint in one transaction) and the rest (agents' and tools' event appends); ` +
      `the checkpoint commit p50/p99 is the checkpoint write time per step, and includes that step's events and run patch, which are written in the same transaction. ` +
      `Commits that threw are counted over the whole mode (any run must still succeed). ` +
      `**Checkpoints**: each sequential run's checkpoints read back with \`listCheckpoints\`; bytes are \`sizeBytes\`, the UTF-8 length of the checkpoint state's JSON as the store records it. ` +
      `**Events**: each sequential run's event log paged through \`listEvents\`. Every run, warm-up included, must end \`succeeded\` or the bench fails. ` +
      `**Stop latency**: 30 runs of \`bench-stop\` (a swarm of 8 branches racing for a 1,500-token budget), each stopped by a budget refusal; measured from the time of its \`budget.exceeded\` envelope to the moment \`waitForRun\` returns (the engine hosts none of the run's actors any more); each must end \`budget_exceeded\` with no live actor. ` +
      `**Tracing**: ${4} rounds of ${25} runs with no tracer provider (every span a no-op: the default without OTEL_EXPORTER_OTLP_ENDPOINT) then ${25} with spans batched and exported over OTLP/HTTP (JSON) to a receiver in the same process, alternating so drift falls on both; per-step overhead as in the sequential phase. ` +
      `**Replay start**: a loop graph (start, body, check, end; body and check repeat) run once short and once long; each is replayed ${7} times per mode from its last replayable step (the one before the step that ended it); ` +
      `start is \`engine.replay()\` until it returns (checkpoint read and copied, the events of the actors live at that step read, the replay's row and first event written, the run hosted); ` +
      `first new event is from the call to the time of the replay's second event. Every replay must end \`succeeded\`.`,
    '',
  ].join('\n');
}
