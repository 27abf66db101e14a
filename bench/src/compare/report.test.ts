import { describe, expect, it } from 'vitest';
import { figuresOf, renderTables } from './report.js';
import type { CompareData } from './report.js';

/** A W6 run that wrote `rowBytes` over `turns` turns, of 1,100 B of unique content a turn. */
const w6Run = (turns: number, rowBytes: number) => ({
  workload: 'w6' as const,
  turns,
  runMs: turns * 10,
  written: { 'public.journal': { rows: turns, rowBytes, diskBytes: rowBytes * 2 } },
  total: { rows: turns, rowBytes, diskBytes: rowBytes * 2 },
  uniqueBytes: turns * 1100,
  peakRssMiB: 100,
});

const data = (): CompareData => ({
  machine: { date: '2026-11-24T00:00:00.000Z', cpu: 'cpu', cores: 2, memoryGiB: 8, os: 'Linux', node: 'v20.20.2', packages: {} },
  peers: {},
  knobs: {
    rounds: 2,
    warmup: 1,
    w1Runs: 2,
    w1MaxSec: 1,
    w2Runs: 1,
    w3Sec: 10,
    w3Concurrency: 64,
    w4Steps: 1000,
    w4Reps: 1,
    w5Runs: [1],
    w6Turns: [10, 100],
    w6ResumeTurns: [10],
    w6TimeoutSec: 60,
  },
  systems: ['ours-pg-nats', 'dbos'],
  w1: {
    'ours-pg-nats': [
      { workload: 'w1', stepMs: [1, 3], runs: 2 },
      { workload: 'w1', stepMs: [2], runs: 1 },
    ],
    dbos: [{ workload: 'w1', stepMs: [4, 6, 8], runs: 3 }],
  },
  w2: {},
  w3: {
    'ours-pg-nats': [{ workload: 'w3', runs: 100, elapsedSec: 10, clientCpuSec: 1, serverCpuSec: 0.5, failed: 0 }],
    dbos: [{ workload: 'w3', runs: 50, elapsedSec: 10, clientCpuSec: 1, serverCpuSec: 1, failed: 0 }],
  },
  w4: {
    'ours-pg-nats': [
      {
        workload: 'w4',
        steps: 1000,
        runMs: 2000,
        replayMs: [5],
        written: { 'public.events': { rows: 1000, rowBytes: 500_000, diskBytes: 800_000 } },
        total: { rows: 1000, rowBytes: 500_000, diskBytes: 800_000 },
        shortSteps: 10,
        shortTotal: { rows: 10, rowBytes: 5000, diskBytes: 8192 },
      },
    ],
  },
  w5: {
    dbos: { 1: [{ workload: 'w5-recover', runs: 1, failed: 0, resumed: 1, readyMs: 100, firstResumedMs: 1100, allResumedMs: 1100, allFinishedMs: 1200 }] },
  },
  w6: {
    'ours-pg-nats': {
      runs: { 10: w6Run(10, 40_000), 100: w6Run(100, 4_000_000) },
      resumes: { 10: { workload: 'w6-recover', turns: 10, killedAt: 9, ok: true, readyMs: 50, firstResumedMs: 80, finishedMs: 90, peakRssMiB: 200 } },
    },
    dbos: {
      runs: { 10: w6Run(10, 20_000), 100: w6Run(100, 200_000) },
      resumes: { 10: { workload: 'w6-recover', turns: 10, killedAt: 9, ok: true, readyMs: 100, firstResumedMs: 160, finishedMs: 170, peakRssMiB: 150 } },
    },
  },
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

  it('derives W6 bytes per turn, stored over unique content, and the resume times', () => {
    const f = figuresOf(data(), 'ours-pg-nats').w6!;
    expect(f.runs[100]).toMatchObject({ storedBytes: 4_000_000, bytesPerTurn: 40_000, uniqueBytes: 110_000, rows: 100 });
    expect(f.runs[100]!.storedPerUnique).toBeCloseTo(36.36, 2);
    expect(f.resumes[10]).toEqual({ killedAt: 9, readyMs: 50, firstMs: 80, finishedMs: 90, ok: true, peakRssMiB: 200 });
  });

  it('renders W6 with its growth against linear and the peers over ours at the longest conversation', () => {
    const t = renderTables(data());
    // Ours grew 100x over 10x the turns (quadratic), DBOS 10x; DBOS stores 2,000 B a turn to ours' 40,000: 0.1x.
    expect(t).toMatch(/W6 stored bytes, 100 turns \/ 10 turns \(linear: 10x\)\s*\| 100\.0x\s*\| 10\.0x/);
    expect(t).toMatch(/W6 100: stored \/ unique content \(107\.4 KiB\)\s*\| 36\.4\s*\| 1\.8/);
    expect(t).toMatch(/DBOS Transact \/ ours \(Postgres \+ NATS\)\s*\| 0\.1x\s*\| 2\.0x\s*\| 1\.9x/);
    expect(t).toContain('| W6 10 turns, SIGKILL at turn 9: restart to ready (ms)');
  });

  it('shows W6 alone when none of W1-W5 ran', () => {
    const d = { ...data(), w1: {}, w3: {}, w4: {}, w5: {} };
    const t = renderTables(d);
    expect(t).not.toContain('W1 per-step overhead');
    expect(t).toContain('W6 10 turns: stored bytes');
  });
});
