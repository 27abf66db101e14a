import { describe, expect, it } from 'vitest';
import type { ClusterResult, ClusterSettings } from './cluster.js';
import { summarize } from './measure.js';
import { renderClusterMarkdown, renderClusterTable } from './report.js';

const settings: ClusterSettings = { counts: [1, 2], workloads: ['pipeline', 'swarm'], warmupRuns: 10, sequentialRuns: 2, concurrency: 16, windowSec: 10, nodeTasks: 32, ackWaitMs: 30_000, runQueueUnacked: 64, llmLatencyMs: 0, natsUrl: 'nats://127.0.0.1:4222' };
const point = { sequentialRuns: 2, runMs: summarize([100, 110]), seenMs: summarize([150, 160]), concurrency: 16, completed: 98, elapsedSec: 10, runsPerSec: 9.8, stepsPerSec: 49 };
const result: ClusterResult = {
  settings,
  points: [
    { ...point, workload: 'pipeline', nodes: 1, stepMs: summarize([20, 22]), perNode: [{ id: 'bench-n1', runsHosted: 100, tasksDone: 500 }] },
    { ...point, workload: 'swarm', nodes: 2, perNode: [{ id: 'bench-n1', runsHosted: 60, tasksDone: 240 }, { id: 'bench-n2', runsHosted: 40, tasksDone: 260 }] },
  ],
};

describe('the cluster report', () => {
  it('has a row per workload and node count, with per-step overhead for the pipeline only and the share of each node', () => {
    const [t] = renderClusterTable(result);
    const rows = t!.split('\n').slice(2);
    expect(rows[0]).toMatch(/^\| pipeline \(5 steps\)\s+\| 1\s+\| 100\.00 \/ 110\.00; 150\.00 \/ 160\.00 \(2 runs\)\s+\| 20\.00 \/ 22\.00\s+\| 9\.8 \(16\)\s+\| 49\.0\s+\| 98 in 10\.0 s\s+\| 100 \/ 500\s+\| 5\.0\s+\|$/);
    expect(rows[1]).toMatch(/^\| swarm \(1 step, 3 branches, 1 step\)\s+\| 2\s+\|.*\| -\s+\|.*\| 60 \/ 240; 40 \/ 260\s+\| 5\.0\s+\|$/);
  });

  it('says when the cluster was skipped, and states the settings in CLUSTER.md', () => {
    expect(renderClusterTable({ skipped: 'NATS down' })).toEqual(['Cluster: skipped (NATS down)']);
    const md = renderClusterMarkdown({ machine: { date: 'd', cpu: 'cpu', cores: 2, memoryGiB: 8, os: 'Linux', node: 'v20', packages: {} }, settings, cluster: result, totalSec: 60 });
    expect(md).toContain('AO_NODE_TASKS 32');
    expect(md).toContain('up to 64 unacknowledged');
    expect(md).toContain('concurrency 16 for 10 s');
    expect(md).toContain('2 cores');
  });
});
