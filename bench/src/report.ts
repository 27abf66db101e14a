import type { BenchOptions, ModeResult } from './bench-mode.js';
import type { ClusterResult, ClusterSettings, ClusterWorkload } from './cluster.js';
import type { MachineInfo } from './env.js';
import type { ScaleResult } from './scale/cluster-scale.js';
import { hopHow, renderHopTable, renderScaleTable, scaleHow } from './scale/report.js';
import { BENCH_GRAPH, BENCH_STEPS, BENCH_SWARM_BRANCHES, BENCH_SWARM_GRAPH, BENCH_SWARM_STEPS } from './workload.js';
import type { ServeResult } from './serve.js';

export type ModeOutcome = ModeResult | { store: ModeResult['store']; skipped: string };

export interface BenchReport {
  machine: MachineInfo;
  options: BenchOptions;
  modes: ModeOutcome[];
  /** Runs/s and per-step overhead with 1, 2 and 3 node processes on NATS + Postgres. */
  cluster?: ClusterResult;
  /** `ao serve` as `pnpm start` runs it: start time, idle RSS, `ao runs` time. */
  serve?: ServeResult;
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
    r(
      '**overhead per step** p50 / p99 / mean (ms)',
      (m) => `${ms(m.sequential.stepMs.p50)} / ${ms(m.sequential.stepMs.p99)} / ${ms(m.sequential.stepMs.mean)}`,
    ),
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
    r('  tracing off / on p99 (ms); spans exported', (m) =>
      m.tracing ? `${ms(m.tracing.off.p99)} / ${ms(m.tracing.on.p99)}; ${m.tracing.spansExported}` : 'n/a',
    ),
    r('**load: runs submitted at once** over HTTP; lost', (m) => (m.load ? `${m.load.runs}; ${m.load.lost}` : 'n/a')),
    r('**load: submit latency** p50 / p99 (ms); where the client ran', (m) =>
      m.load
        ? `${ms(m.load.submitMs.p50)} / ${ms(m.load.submitMs.p99)}; ${m.load.client === 'inline' ? 'server thread' : m.load.client === 'raw' ? 'worker thread, raw HTTP' : 'worker thread'}`
        : 'n/a',
    ),
    r('load: all accepted in / all finished in (s); runs/s', (m) =>
      m.load ? `${one(m.load.submitSec)} / ${one(m.load.elapsedSec)}; ${one(m.load.runsPerSec)}` : 'n/a',
    ),
    ...(modes[0]?.replay?.runs ?? []).flatMap((_, i) => [
      r(`**replay start** of a ${modes[0]!.replay.runs[i]!.steps}-step run from step ${modes[0]!.replay.runs[i]!.fromStep}, live p50 / p99 (ms)`, (m) =>
        replayCell(m, i, 'live', 'startMs'),
      ),
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

const WORKLOAD_LABEL: Record<ClusterWorkload, string> = {
  pipeline: `pipeline (${BENCH_STEPS} steps)`,
  swarm: `swarm (1 step, ${BENCH_SWARM_BRANCHES} branches, 1 step)`,
};

/** The cluster table: one row per workload and node count. */
export function renderClusterTable(c: ClusterResult | undefined): string[] {
  if (!c) return [];
  if ('skipped' in c) return [`Cluster: skipped (${c.skipped})`];
  const pair = (s: { p50: number; p99: number } | undefined): string => (s ? `${ms(s.p50)} / ${ms(s.p99)}` : '-');
  return [
    table(
      [
        'workload',
        'ao node processes',
        'one run at a time: run p50 / p99 (ms), row created to finished; as the submitter saw it',
        '**per-step overhead** p50 / p99 (ms), one run at a time',
        '**runs/s** at concurrency',
        'steps/s',
        'runs completed in the window',
        'per node: runs hosted / node tasks done',
        'node tasks per run',
      ],
      c.points.map((p) => {
        const runs = p.sequentialRuns + p.completed;
        const tasks = p.perNode?.reduce((a, x) => a + x.tasksDone, 0);
        return [
          WORKLOAD_LABEL[p.workload ?? 'pipeline'],
          String(p.nodes),
          p.runMs ? `${pair(p.runMs)}; ${pair(p.seenMs)} (${p.sequentialRuns} runs)` : '-',
          p.stepMs ? `${pair(p.stepMs)}${p.runMs ? '' : ` (${p.sequentialRuns} runs)`}` : '-',
          `${one(p.runsPerSec)} (${p.concurrency})`,
          one(p.stepsPerSec),
          `${p.completed} in ${one(p.elapsedSec)} s`,
          p.perNode ? p.perNode.map((x) => `${x.runsHosted} / ${x.tasksDone}`).join('; ') : '-',
          tasks !== undefined && runs > 0 ? one(tasks / runs) : '-',
        ];
      }),
    ),
  ];
}

/** How the cluster was measured, with its settings (what CLUSTER.md and RUNTIME-RESULTS.md say under the table). */
export function clusterHow(st: ClusterSettings): string {
  const swarm = st.workloads.includes('swarm');
  return [
    `The bench process is a gateway without a node (a passive engine): it enqueues runs and follows their rows. ` +
      `N \`ao node\` processes (N = ${st.counts.join(', ')}), each on the same Postgres database and NATS prefix (a fresh one per N), take the runs from the JetStream run queue and host them; ` +
      `every pipeline node execution${swarm ? ' and every swarm branch' : ''} is a node task on a second JetStream work queue that every node pulls, so a run's steps can run on any node, their writes going to the run's host over NATS request/reply.`,
    '',
    `- **Workload${swarm ? 's' : ''}**: \`${BENCH_GRAPH}\` (bench/src/workload.ts), ${BENCH_STEPS} sequential \`pipeline\` steps, each calling the \`noop\` tool once (via \`args\`) and then the offline LLM once; each step is a node task.` +
      (swarm
        ? ` And \`${BENCH_SWARM_GRAPH}\`: a step, a \`swarm\` step of ${BENCH_SWARM_BRANCHES} branches, a step; every step and branch does what a pipeline step does, and each branch is a node task of its own, so one run's branches can spread over the nodes (steps/s counts ${BENCH_SWARM_STEPS} per run: the two steps and the ${BENCH_SWARM_BRANCHES} branches; per-step overhead is not given for it, as its branches overlap).`
        : ''),
    `- **Per-node concurrency**: each node runs up to AO_NODE_TASKS = ${st.nodeTasks} node tasks at once (a task is fetched only when a slot is free), and its run-queue consumer holds up to ${st.runQueueUnacked} unacknowledged run items (a run is acknowledged once hosted; a node hosts every run it takes). AO_NATS_ACK_WAIT_MS = ${st.ackWaitMs}. Offline LLM latency AO_LLM_LATENCY_MS = ${st.llmLatencyMs}.`,
    `- **Load**: set by the submitter. Per workload and node count: ${st.warmupRuns} warm-up runs (not timed), then ${st.sequentialRuns} runs one at a time, nearest-rank percentiles. ` +
      `Their run time is taken from the run row, \`createdAt\` (written by the submitter's \`startRun\`) to \`finishedAt\` (written by the hosting node's run supervisor when it ends the run), one machine and one clock; per-step overhead = that / ${BENCH_STEPS}. ` +
      `The time the submitter saw (\`startRun\` to \`waitForRun\` returning) is given beside it: a gateway without a node follows another node's run by its run signals over core NATS (\`<prefix>.st.<run>\`, sent by the host after each run-level commit), reading the row when one says the run ended. ` +
      `Then ${st.concurrency} runs kept in flight for a ${st.windowSec} s window; the runs in flight at the deadline are awaited, and runs/s = runs started in the window / time from the first start to the last finish . Every run must end \`succeeded\`.`,
    `- **Per node**: runs hosted and node tasks done by each node during the sequential runs and the window, from the differences of the counters in the cluster's membership (refreshed every 2 s; read 2.5 s after each phase); node tasks per run = all nodes' tasks / runs in those phases. This shows how runs and tasks divide among the nodes; which node ran each task of a run is in its events (\`node.completed\` and \`node.failed\` name it).`,
    `- **Machine**: all processes (the bench, the ${Math.max(...st.counts)} nodes at most, Postgres and nats-server) share this machine's cores, so adding nodes adds no CPU here: these figures show the cost of the NATS hops and of coordination and how the work spreads, not scale-out headroom.`,
  ].join('\n');
}

/**
 * bench/CLUSTER.md: header (date, machine, versions), the scaling table and how it was measured,
 * then (when measured) the overhead table at 0 ms model latency and its settings.
 */
export function renderClusterMarkdown(r: {
  machine: MachineInfo;
  scale?: ScaleResult;
  cluster?: ClusterResult;
  settings?: ClusterSettings;
  totalSec: number;
}): string {
  const mc = r.machine;
  const scale = r.scale && !('skipped' in r.scale) ? r.scale : undefined;
  return [
    '# Benchmark results: the cluster (`BENCH_WORKLOADS=cluster pnpm bench`)',
    '',
    'Written by the `cluster` workload of `pnpm bench` (bench/src/compare/main.ts, bench/src/scale/cluster-scale.ts, bench/src/cluster.ts); overwritten on every run. History: `bench/results.jsonl` (lines with `"kind":"cluster"`).',
    '',
    `- Date: ${mc.date}`,
    `- Machine: ${mc.cpu}, ${mc.cores} cores, ${mc.memoryGiB} GiB RAM, ${mc.os}; Postgres and nats-server on the same machine, shared with the bench and every node`,
    `- Node: ${mc.node}`,
    `- Packages: ${Object.entries(mc.packages)
      .map(([n, v]) => `${n} ${v}`)
      .join(', ')}`,
    ...(scale
      ? [
          `- Scaling: ${scale.settings.counts.join(', ')} \`ao node\` processes, each limited to ${scale.settings.cpusPerNode || 'unlimited'} CPU by its cgroup; AO_NODE_TASKS ${scale.settings.nodeTasks}; offline LLM at ${scale.settings.llmLatencyMs} ms; ${scale.settings.nodeTasks} runs in flight per node, counted over ${scale.settings.windowSec} s`,
        ]
      : []),
    ...(r.settings
      ? [
          `- Overhead: ${r.settings.counts.join(', ')} \`ao node\` processes; per node AO_NODE_TASKS ${r.settings.nodeTasks}, run-queue consumer up to ${r.settings.runQueueUnacked} unacknowledged items, AO_NATS_ACK_WAIT_MS ${r.settings.ackWaitMs}; submitter ${r.settings.sequentialRuns} sequential runs, then concurrency ${r.settings.concurrency} for ${r.settings.windowSec} s; offline LLM at ${r.settings.llmLatencyMs} ms`,
        ]
      : []),
    `- Whole cluster bench: ${r.totalSec.toFixed(0)} s`,
    '',
    ...(r.scale
      ? [
          '## Scaling: nodes with a CPU quota each, a model that takes its time',
          '',
          ...renderScaleTable(r.scale),
          '',
          ...(scale ? ['### How measured', '', scaleHow(scale.settings, scale.cgroup), ''] : []),
        ]
      : []),
    ...(scale?.hops
      ? [
          '## Hops: one node behind a gateway against embedded, model at 0 ms, no quota',
          '',
          ...renderHopTable(scale.hops),
          '',
          ...('skipped' in scale.hops ? [] : ['### How measured', '', hopHow(scale.hops), '']),
        ]
      : []),
    ...(r.cluster && r.settings
      ? [
          "## Overhead: the cluster's hops at 0 ms model latency, nodes on the shared cores (BENCH_CLUSTER_OVERHEAD=1)",
          '',
          ...renderClusterTable(r.cluster),
          '',
          '### How measured',
          '',
          clusterHow(r.settings),
          '',
        ]
      : []),
  ].join('\n');
}

/** The results table as printed to stdout. */
export function renderText(report: BenchReport): string {
  const done = completed(report.modes);
  const parts = [
    table(
      ['metric', ...done.map((m) => LABELS[m.store])],
      rows(done).map((r) => r.map((c) => c.replaceAll('**', ''))),
    ),
  ];
  parts.push(...skippedNotes(report.modes));
  for (const m of done) parts.push(`${LABELS[m.store]} events of one run by type: ${formatByType(m.events.byType)}`);
  for (const m of done) parts.push(`${LABELS[m.store]} checkpoints of one run: ${formatCheckpoints(m.checkpoints.firstRun)}`);
  parts.push(...renderClusterTable(report.cluster).map((x) => x.replaceAll('**', '')));
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
    'Written by `pnpm --filter @ao/bench bench:runtime` (bench/src/main.ts); overwritten on every run, except the hand-written comparisons after the marker at the end. History: `bench/results.jsonl`.',
    '',
    `- Date: ${mc.date}`,
    `- Machine: ${mc.cpu}, ${mc.cores} cores, ${mc.memoryGiB} GiB RAM, ${mc.os}`,
    `- Node: ${mc.node}`,
    `- Packages: ${Object.entries(mc.packages)
      .map(([n, v]) => `${n} ${v}`)
      .join(', ')}`,
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
    ...renderClusterTable(report.cluster),
    '',
    ...(report.cluster && 'points' in report.cluster && report.cluster.settings ? [clusterHow(report.cluster.settings), ''] : []),
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
      `first new event is from the call to the time of the replay's second event. Every replay must end \`succeeded\`. ` +
      `**Load**: a gateway (auth on, its own tenant's key, no rate limit or run cap) in front of the mode's engine takes 1,000 POST /runs sent at once, each timed from its request to its 202; ` +
      `the client runs on a worker thread of its own, as another process would (\`BENCH_LOAD_CLIENT=inline\`: on the server's thread, as this bench did before 2026-12-05, which adds the client's CPU to every submit). Every run must end \`succeeded\` and be in the store.`,
    '',
  ].join('\n');
}
