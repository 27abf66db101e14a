import { table } from '../report.js';
import { BENCH_GRAPH, BENCH_STEPS } from '../workload.js';
import type { ScaleResult, ScaleSettings } from './cluster-scale.js';
import type { HopResult } from './hops.js';

const f0 = (x: number | undefined): string => (x !== undefined && Number.isFinite(x) ? x.toFixed(0) : '-');
const f1 = (x: number | undefined): string => (x !== undefined && Number.isFinite(x) ? x.toFixed(1) : '-');
const f2 = (x: number | undefined): string => (x !== undefined && Number.isFinite(x) ? x.toFixed(2) : '-');
const pct = (cpus: number | undefined): string => (cpus !== undefined && Number.isFinite(cpus) ? `${(cpus * 100).toFixed(0)} %` : '-');

/** The scaling table: the embedded runtime, then one row per node count, with speed-up over 1 node and the load of each part. */
export function renderScaleTable(r: ScaleResult | undefined): string[] {
  if (!r) return [];
  if ('skipped' in r) return [`Scaling: skipped (${r.skipped})`];
  const { settings: s } = r;
  const base = r.points.find((p) => p.nodes === 1)?.runsPerSec;
  const over = (x: number) => f0(x - s.llmLatencyMs);
  return [
    table(
      [
        'runtime',
        '**runs/s**',
        'speed-up over 1 node',
        'steps/s',
        'per-step p50 / p99 (ms), one run at a time (above the model)',
        'per-step p50 / p99 (ms) under load',
        'runs in flight; finished in the window',
        'CPU per node (quota)',
        'quota periods throttled',
        'Postgres: bench db / whole server',
        'nats-server',
        'submitter',
        'machine (all processes)',
        'Postgres transactions per step',
        'runs hosted per node',
      ],
      r.points.map((p) =>
        p.nodes === 0
          ? [
              'embedded (in-process bus, same Postgres), no quota',
              '-',
              '-',
              '-',
              `${f0(p.stepMs.p50)} / ${f0(p.stepMs.p99)} (${over(p.stepMs.p50)})`,
              '-',
              '-',
              '-',
              '-',
              '-',
              '-',
              '-',
              '-',
              '-',
              '-',
            ]
          : [
              `${p.nodes} \`ao node\``,
              f2(p.runsPerSec),
              base && p.runsPerSec ? `${(p.runsPerSec / base).toFixed(2)}×` : '-',
              f1(p.stepsPerSec),
              `${f0(p.stepMs.p50)} / ${f0(p.stepMs.p99)} (${over(p.stepMs.p50)})`,
              p.loadedStepMs ? `${f0(p.loadedStepMs.p50)} / ${f0(p.loadedStepMs.p99)}` : '-',
              `${p.inFlight}; ${p.completed}`,
              p.load ? `${p.load.nodes.map(pct).join(', ')} (${pct(s.cpusPerNode || undefined)})` : '-',
              p.throttled?.length ? p.throttled.map((t) => (t.periods ? `${((100 * t.throttled) / t.periods).toFixed(0)} %` : '-')).join(', ') : '-',
              p.load ? `${pct(p.load.postgresBench)} / ${pct(p.load.postgres)}` : '-',
              pct(p.load?.nats),
              pct(p.load?.submitter),
              pct(p.load?.machine),
              f1(p.commitsPerStep),
              p.runsHosted?.join(', ') ?? '-',
            ],
      ),
    ),
  ];
}

/** How the scaling bench was measured (CLUSTER.md, under its table). */
export function scaleHow(s: ScaleSettings, cgroup: string): string {
  return [
    `Each \`ao node\` process runs in a cgroup of its own (${cgroup}) allowed ${s.cpusPerNode || 'unlimited'} CPU${s.cpusPerNode === 1 ? '' : 's'} (quota ${Math.round(s.cpusPerNode * 100_000)} µs per 100,000 µs period) with weight ${s.weight} (cpu.shares ${s.weight * 1024}: on this shared machine the group gets its quota against the other processes, each weighing 1024, instead of only being capped by it). A node is started outside the group (compiling the CLI through tsx takes seconds of CPU) and put in it once it runs; the groups are removed afterwards. Postgres, nats-server and the bench process are not limited: they are what must not be the limit.`,
    '',
    `- **Workload**: \`${BENCH_GRAPH}\` (bench/src/workload.ts), ${BENCH_STEPS} sequential steps, each calling the \`noop\` tool and then the offline model, which answers after AO_LLM_LATENCY_MS = ${s.llmLatencyMs} ms (a realistic model call). Runs spread over the nodes through the run queue and a pipeline's steps run on its host (a swarm's branches would be node tasks). AO_NODE_TASKS = ${s.nodeTasks} per node.`,
    `- **Per-step latency, one run at a time**: ${s.warmupRuns} warm-up runs, then ${s.sequentialRuns} runs one after the other; a run's time from its row (\`createdAt\`, written by the submitter, to \`finishedAt\`, written by its host) / ${BENCH_STEPS}, nearest-rank percentiles; in brackets the p50 above the model's ${s.llmLatencyMs} ms. The embedded row is the same in the bench process with the in-process bus on the same Postgres (no NATS, no quota): the cluster's hops are the difference.`,
    `- **Throughput**: the submitter (the bench process, a gateway without a node, which follows each run by its run signals over NATS) keeps ${s.nodeTasks} runs per node in flight. After ${s.rampSec} s, the runs that end within the next ${s.windowSec} s are counted: runs/s = those / ${s.windowSec}; steps/s = ${BENCH_STEPS} × runs/s; per-step latency under load from the same runs' rows (it includes waiting for a slot and for CPU).`,
    `- **Load**: CPU time (user + system, /proc/<pid>/stat) used during the window by each node, by every \`postgres\` process of the server and by those serving the bench database alone (their command line names it), by \`nats-server\` and by the bench process, divided by the window: 100 % is one CPU. Postgres and NATS are shared with whatever else runs on this machine. "quota periods throttled" is the share of the node's 100 ms periods with work in which it hit its quota (cpu.stat). Postgres transactions per step: \`pg_stat_database.xact_commit\` of the bench database over the window / steps finished; it counts every transaction, reads (the submitter's and the nodes' row reads) and lease renewals included, so it is an upper bound on the journal's commits.`,
    `- **Machine**: 2 cores shared with other work (the "machine" column is all of it). With a quota, a node's CPU, not the machine's, is what each node adds: the speed-up is what adding nodes adds when each brings its own CPU, as separate machines would.`,
  ].join('\n');
}

/** The hop table: embedded against one `ao node` behind a gateway, model at 0 ms, no quota, runs alternated. */
export function renderHopTable(h: HopResult | { skipped: string } | undefined): string[] {
  if (!h) return [];
  if ('skipped' in h) return [`Hops: skipped (${h.skipped})`];
  const cell = (x: { p50: number; p99: number }) => `${f1(x.p50)} / ${f1(x.p99)}`;
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  return [
    table(
      [
        'runtime',
        '**per-step p50** / p99 (ms), from the run row',
        'p50 over embedded',
        'per-step p50 / p99 (ms), as the submitter saw it',
        'p50 over embedded (seen)',
      ],
      [
        ['embedded (in-process bus)', cell(h.embedded.stepMs), '1.00×', cell(h.embedded.seenStepMs), '1.00×'],
        [
          '1 `ao node` behind a gateway without a node (NATS)',
          cell(h.cluster.stepMs),
          `**${ratio(h.cluster.stepMs.p50, h.embedded.stepMs.p50)}**`,
          cell(h.cluster.seenStepMs),
          ratio(h.cluster.seenStepMs.p50, h.embedded.seenStepMs.p50),
        ],
      ],
    ),
  ];
}

/** How the hops were measured (CLUSTER.md, under their table). */
export function hopHow(h: HopResult): string {
  return [
    `The offline model answers at once (AO_LLM_LATENCY_MS = 0) and no process has a CPU quota, so the table shows what the cluster's hops cost a run, which a 500 ms model hides. \`${BENCH_GRAPH}\`, ${BENCH_STEPS} steps, one run at a time. **Embedded**: a runtime in the bench process with the in-process bus, on a Postgres database of its own. **Cluster**: one \`ao node\` process hosting the runs, and the bench process as a gateway without a node that starts each run (it goes through the NATS run queue to the node) and follows it by its run signals over core NATS (it reads the run's row once when it begins to follow and once when \`run.finished\` comes); another database on the same server. Both are up at once and their runs alternate (${h.settings.warmupRuns} warm-up runs each, then ${h.settings.runs} each), so a change of the machine's load falls on both.`,
    '',
    `- **From the run row**: (\`finishedAt\` - \`createdAt\`) / ${BENCH_STEPS}: from the insert of the run by its submitter to the commit that ends it on its host. It holds the queue hop to the node, and the steps: on the run's host, as embedded, but each commit also published to NATS.`,
    `- **As the submitter saw it**: \`startRun\` to \`waitForRun\` returning, / ${BENCH_STEPS}: adds the run signal's hop back to the gateway and its read of the row.`,
  ].join('\n');
}
