import { describe, expect, it } from 'vitest';
import { figuresOf, renderTables } from './report.js';
import type { CompareData } from './report.js';

const data = (): CompareData => ({
  machine: { date: '2026-11-24T00:00:00.000Z', cpu: 'cpu', cores: 2, memoryGiB: 8, os: 'Linux', node: 'v20.20.2', packages: {} },
  peers: {},
  knobs: { rounds: 2, warmup: 1, w1Runs: 2, w1MaxSec: 1, w2Runs: 1, w3Sec: 10, w3Concurrency: 64, w4Steps: 1000, w4Reps: 1, w5Runs: [1] },
  systems: ['ours-pg-nats', 'dbos'],
  w1: { 'ours-pg-nats': [{ workload: 'w1', stepMs: [1, 3], runs: 2 }, { workload: 'w1', stepMs: [2], runs: 1 }], dbos: [{ workload: 'w1', stepMs: [4, 6, 8], runs: 3 }] },
  w2: {},
  w3: {
    'ours-pg-nats': [{ workload: 'w3', runs: 100, elapsedSec: 10, clientCpuSec: 1, serverCpuSec: 0.5, failed: 0 }],
    dbos: [{ workload: 'w3', runs: 50, elapsedSec: 10, clientCpuSec: 1, serverCpuSec: 1, failed: 0 }],
  },
  w4: {
    'ours-pg-nats': [{ workload: 'w4', steps: 1000, runMs: 2000, replayMs: [5], written: { 'public.events': { rows: 1000, rowBytes: 500_000, diskBytes: 800_000 } }, total: { rows: 1000, rowBytes: 500_000, diskBytes: 800_000 }, shortSteps: 10, shortTotal: { rows: 10, rowBytes: 5000, diskBytes: 8192 } }],
  },
  w5: { dbos: { 1: [{ workload: 'w5-recover', runs: 1, failed: 0, resumed: 1, readyMs: 100, firstResumedMs: 1100, allResumedMs: 1100, allFinishedMs: 1200 }] } },
  notes: [],
  totalSec: 1,
});

describe('the comparison report', () => {
  it('pools the rounds of W1 and derives per-step, rate and CPU figures', () => {
    const f = figuresOf(data(), 'ours-pg-nats');
    expect(f.w1).toEqual({ p50: 2, p99: 3, n: 3 });
    expect(f.w3).toMatchObject({ runsPerSec: 10, stepsPerSec: 50, cpuSecPer1000Steps: 3 });
    expect(f.w4).toMatchObject({ stepMs: 2, rowsPerStep: 1, bytesPerStep: 500, shortBytesPerStep: 500, replayMs: 5 });
    expect(figuresOf(data(), 'dbos').w5?.[1]).toEqual({ readyMs: 100, firstMs: 1100, allMs: 1100, finishedMs: 1200, failed: 0 });
  });

  it('states ratios as the peer over ours, and ours over the peer for rates', () => {
    const t = renderTables(data());
    // W1 p50 6 vs 2: 3.0x; p99 8 vs 3: 2.7x; W3 runs/s 10 vs 5: 2.0x; CPU per step 8 vs 3: 2.7x.
    expect(t).toMatch(/DBOS Transact \/ ours \(Postgres \+ NATS\)\s*\| 3\.0x\s*\| 2\.7x\s*\| -\s*\| 2\.0x\s*\| 2\.7x/);
    expect(t).toContain('| W5 1: restart to first resumed step (ms)');
  });
});
