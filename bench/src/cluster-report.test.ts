import { describe, expect, it } from 'vitest';
import type { ClusterResult, ClusterSettings } from './cluster.js';
import { summarize } from './measure.js';
import { renderClusterMarkdown, renderClusterTable } from './report.js';
import { parseCpuStat } from './scale/cgroup.js';
import type { ScaleResult } from './scale/cluster-scale.js';
import { renderHopTable, renderScaleTable } from './scale/report.js';

const settings: ClusterSettings = {
  counts: [1, 2],
  workloads: ['pipeline', 'swarm'],
  warmupRuns: 10,
  sequentialRuns: 2,
  concurrency: 16,
  windowSec: 10,
  nodeTasks: 32,
  ackWaitMs: 30_000,
  runQueueUnacked: 64,
  llmLatencyMs: 0,
  natsUrl: 'nats://127.0.0.1:4222',
};
const point = {
  sequentialRuns: 2,
  runMs: summarize([100, 110]),
  seenMs: summarize([150, 160]),
  concurrency: 16,
  completed: 98,
  elapsedSec: 10,
  runsPerSec: 9.8,
  stepsPerSec: 49,
};
const result: ClusterResult = {
  settings,
  points: [
    { ...point, workload: 'pipeline', nodes: 1, stepMs: summarize([20, 22]), perNode: [{ id: 'bench-n1', runsHosted: 100, tasksDone: 500 }] },
    {
      ...point,
      workload: 'swarm',
      nodes: 2,
      perNode: [
        { id: 'bench-n1', runsHosted: 60, tasksDone: 240 },
        { id: 'bench-n2', runsHosted: 40, tasksDone: 260 },
      ],
    },
  ],
};

describe('the cluster report', () => {
  it('has a row per workload and node count, with per-step overhead for the pipeline only and the share of each node', () => {
    const [t] = renderClusterTable(result);
    const rows = t!.split('\n').slice(2);
    expect(rows[0]).toMatch(
      /^\| pipeline \(5 steps\)\s+\| 1\s+\| 100\.00 \/ 110\.00; 150\.00 \/ 160\.00 \(2 runs\)\s+\| 20\.00 \/ 22\.00\s+\| 9\.8 \(16\)\s+\| 49\.0\s+\| 98 in 10\.0 s\s+\| 100 \/ 500\s+\| 5\.0\s+\|$/,
    );
    expect(rows[1]).toMatch(/^\| swarm \(1 step, 3 branches, 1 step\)\s+\| 2\s+\|.*\| -\s+\|.*\| 60 \/ 240; 40 \/ 260\s+\| 5\.0\s+\|$/);
  });

  it('says when the cluster was skipped, and states the settings in CLUSTER.md', () => {
    expect(renderClusterTable({ skipped: 'NATS down' })).toEqual(['Cluster: skipped (NATS down)']);
    const md = renderClusterMarkdown({
      machine: { date: 'd', cpu: 'cpu', cores: 2, memoryGiB: 8, os: 'Linux', node: 'v20', packages: {} },
      settings,
      cluster: result,
      totalSec: 60,
    });
    expect(md).toContain('AO_NODE_TASKS 32');
    expect(md).toContain('up to 64 unacknowledged');
    expect(md).toContain('concurrency 16 for 10 s');
    expect(md).toContain('2 cores');
  });
});

describe('the scaling report', () => {
  const s = {
    counts: [1, 2],
    cpusPerNode: 0.1,
    weight: 4,
    nodeTasks: 32,
    llmLatencyMs: 500,
    warmupRuns: 2,
    sequentialRuns: 6,
    hopRuns: 30,
    rampSec: 6,
    windowSec: 20,
    natsUrl: 'nats://127.0.0.1:4222',
  };
  const load = (n: number) => ({ nodes: Array.from({ length: n }, () => 0.1), postgres: 0.2, postgresBench: 0.1, nats: 0.05, submitter: 0.1, machine: 1.5 });
  const scale: ScaleResult = {
    settings: s,
    cgroup: 'cgroup v1',
    points: [
      { nodes: 0, stepMs: summarize([510, 512]) },
      {
        nodes: 1,
        stepMs: summarize([520, 530]),
        loadedStepMs: summarize([900]),
        inFlight: 32,
        completed: 60,
        runsPerSec: 3,
        stepsPerSec: 15,
        commitsPerStep: 5,
        load: load(1),
        throttled: [{ periods: 100, throttled: 40 }],
        runsHosted: [60],
      },
      {
        nodes: 2,
        stepMs: summarize([525]),
        loadedStepMs: summarize([950]),
        inFlight: 64,
        completed: 116,
        runsPerSec: 5.8,
        stepsPerSec: 29,
        commitsPerStep: 5,
        load: load(2),
        throttled: [
          { periods: 100, throttled: 50 },
          { periods: 0, throttled: 0 },
        ],
        runsHosted: [60, 56],
      },
    ],
  };

  it('gives the speed-up over one node, the per-step time above the model, and the load of each part', () => {
    const [t] = renderScaleTable(scale);
    const rows = t!.split('\n').slice(2);
    expect(rows[0]).toMatch(/^\| embedded .*\| 510 \/ 512 \(10\)/);
    expect(rows[1]).toMatch(
      /^\| 1 `ao node`\s+\| 3\.00\s+\| 1\.00×\s+\| 15\.0\s+\| 520 \/ 530 \(20\)\s+\| 900 \/ 900\s+\| 32; 60\s+\| 10 % \(10 %\)\s+\| 40 %\s+\| 10 % \/ 20 %\s+\| 5 %/,
    );
    expect(rows[2]).toMatch(/\| 1\.93×\s+\|.*\| 10 %, 10 % \(10 %\)\s+\| 50 %, -\s+\|/);
    const md = renderClusterMarkdown({
      machine: { date: 'd', cpu: 'cpu', cores: 2, memoryGiB: 8, os: 'Linux', node: 'v20', packages: {} },
      scale,
      totalSec: 60,
    });
    expect(md).toContain('limited to 0.1 CPU by its cgroup');
    expect(md).toContain('cpu.shares 4096');
    expect(md).not.toContain('## Overhead');
  });

  it('gives the hops at a 0 ms model: per-step p50 / p99 from the row and as seen, each over embedded', () => {
    const hops = {
      settings: { warmupRuns: 10, runs: 30, natsUrl: 'nats://127.0.0.1:4222' },
      embedded: { stepMs: summarize([10, 12]), seenStepMs: summarize([11, 13]) },
      cluster: { stepMs: summarize([13, 15]), seenStepMs: summarize([15, 17]) },
    };
    const [t] = renderHopTable(hops);
    const rows = t!.split('\n').slice(2);
    expect(rows[0]).toMatch(/^\| embedded \(in-process bus\)\s+\| 10\.0 \/ 12\.0\s+\| 1\.00×\s+\| 11\.0 \/ 13\.0\s+\| 1\.00×\s+\|$/);
    expect(rows[1]).toMatch(/^\| 1 `ao node` behind .*\| 13\.0 \/ 15\.0\s+\| \*\*1\.30×\*\*\s+\| 15\.0 \/ 17\.0\s+\| 1\.36×\s+\|$/);
    const md = renderClusterMarkdown({
      machine: { date: 'd', cpu: 'cpu', cores: 2, memoryGiB: 8, os: 'Linux', node: 'v20', packages: {} },
      scale: { ...scale, hops },
      totalSec: 60,
    });
    expect(md).toContain('## Hops: one node behind a gateway against embedded, model at 0 ms, no quota');
    expect(md).toContain('10 warm-up runs each, then 30 each');
    expect(renderHopTable({ skipped: 'NATS down' })).toEqual(['Hops: skipped (NATS down)']);
  });

  it('reads throttling from cgroup v1 and v2 cpu.stat', () => {
    expect(parseCpuStat('nr_periods 10\nnr_throttled 4\nthrottled_time 2000000\n')).toEqual({ periods: 10, throttled: 4, throttledMs: 2 });
    expect(parseCpuStat('usage_usec 5\nnr_periods 10\nnr_throttled 3\nthrottled_usec 1500\n')).toEqual({ periods: 10, throttled: 3, throttledMs: 1.5 });
  });
});
