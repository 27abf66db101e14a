import { summarize } from '../measure.js';
import type { MachineInfo } from '../env.js';
import type { TableStats } from './db.js';
import { PIPELINE_STEPS, SYSTEM_LABEL } from './system.js';
import type { SystemName } from './system.js';
import type { WorkerKnobs, WorkerResult } from './worker.js';

type Of<W extends WorkerResult['workload']> = Extract<WorkerResult, { workload: W }>;

/** Every worker result of one bench run, by workload and system (one entry per round). */
export interface CompareData {
  machine: MachineInfo;
  peers: Record<string, string>;
  knobs: WorkerKnobs & { rounds: number; w5Runs: number[]; w6Turns: number[]; w6ResumeTurns: number[]; w6TimeoutSec: number };
  systems: SystemName[];
  w1: Partial<Record<SystemName, Of<'w1'>[]>>;
  w2: Partial<Record<SystemName, Of<'w2'>[]>>;
  w3: Partial<Record<SystemName, Of<'w3'>[]>>;
  w4: Partial<Record<SystemName, Of<'w4'>[]>>;
  w5: Partial<Record<SystemName, Record<number, Of<'w5-recover'>[]>>>;
  /** W6 by number of turns: the plain runs (stored bytes) and the crash-resumed ones. */
  w6: Partial<Record<SystemName, { runs: Record<number, Of<'w6'>>; resumes: Record<number, Of<'w6-recover'>> }>>;
  /** Why a system could not run a workload. */
  notes: string[];
  totalSec: number;
}

const f = (n: number | null | undefined, d = 2): string => (n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toFixed(d));
const ratio = (peer: number, ours: number): string => (Number.isFinite(peer) && Number.isFinite(ours) && ours > 0 ? `${(peer / ours).toFixed(1)}x` : '-');

export interface Figures {
  w1?: { p50: number; p99: number; n: number };
  w2?: { p50: number; p99: number; n: number };
  w3?: { runsPerSec: number; stepsPerSec: number; cpuSecPer1000Steps: number; clientCpuSecPer1000Steps: number; failed: number };
  w4?: {
    stepMs: number;
    rowsPerStep: number | null;
    bytesPerStep: number | null;
    diskBytesPerStep: number | null;
    totalBytes: number | null;
    shortBytesPerStep: number | null;
    replayMs: number;
    written: Record<string, TableStats> | null;
  };
  w5?: Record<number, { readyMs: number; firstMs: number; allMs: number; finishedMs: number; failed: number }>;
  w6?: {
    runs: Record<number, W6Figures>;
    resumes: Record<number, { killedAt: number; readyMs: number; firstMs: number; finishedMs: number; ok: boolean; peakRssMiB: number }>;
  };
}

export interface W6Figures {
  /** Row bytes written by the conversation (null: not measured, PGlite). */
  storedBytes: number | null;
  diskBytes: number | null;
  rows: number | null;
  bytesPerTurn: number | null;
  uniqueBytes: number;
  /** Stored over unique content: 1 would be each thing kept once, uncompressed, without overhead. */
  storedPerUnique: number | null;
  runMs: number;
  peakRssMiB: number;
}

const median = (xs: number[]): number => summarize(xs).p50;

/** The figures of one system, rounds pooled (samples) or their median (rates). */
export function figuresOf(d: CompareData, s: SystemName): Figures {
  const out: Figures = {};
  const w1 = d.w1[s];
  if (w1?.length) {
    const all = summarize(w1.flatMap((r) => r.stepMs));
    out.w1 = { p50: all.p50, p99: all.p99, n: all.n };
  }
  const w2 = d.w2[s];
  if (w2?.length) {
    const all = summarize(w2.flatMap((r) => r.joinMs));
    out.w2 = { p50: all.p50, p99: all.p99, n: all.n };
  }
  const w3 = d.w3[s];
  if (w3?.length) {
    const steps = w3.reduce((a, r) => a + r.runs * PIPELINE_STEPS, 0);
    const client = w3.reduce((a, r) => a + r.clientCpuSec, 0);
    const server = w3.reduce((a, r) => a + (r.serverCpuSec ?? 0), 0);
    const rps = median(w3.map((r) => r.runs / r.elapsedSec));
    out.w3 = {
      runsPerSec: rps,
      stepsPerSec: rps * PIPELINE_STEPS,
      cpuSecPer1000Steps: ((client + server) / steps) * 1000,
      clientCpuSecPer1000Steps: (client / steps) * 1000,
      failed: w3.reduce((a, r) => a + r.failed, 0),
    };
  }
  const w4 = d.w4[s];
  if (w4?.length) {
    const r = w4[0]!;
    const per = (t: TableStats | null, steps: number, k: keyof TableStats) => (t ? t[k] / steps : null);
    out.w4 = {
      stepMs: median(w4.map((x) => x.runMs / x.steps)),
      rowsPerStep: per(r.total, r.steps, 'rows'),
      bytesPerStep: per(r.total, r.steps, 'rowBytes'),
      diskBytesPerStep: per(r.total, r.steps, 'diskBytes'),
      totalBytes: r.total?.rowBytes ?? null,
      shortBytesPerStep: per(r.shortTotal, r.shortSteps, 'rowBytes'),
      replayMs: median(w4.flatMap((x) => x.replayMs)),
      written: r.written,
    };
  }
  const w5 = d.w5[s];
  if (w5) out.w5 = w5Figures(w5);
  const w6 = d.w6?.[s];
  if (w6) out.w6 = w6Figures(w6);
  return out;
}

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(w[i]!)).join(' | ')} |`;
  return [line(head), `|${w.map((x) => '-'.repeat(x + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

const bytes = (n: number | null | undefined): string =>
  n === null || n === undefined
    ? '-'
    : n >= 10 * 1024 * 1024
      ? `${(n / 1024 / 1024).toFixed(1)} MiB`
      : n >= 10 * 1024
        ? `${(n / 1024).toFixed(1)} KiB`
        : `${n} B`;

/** Whether W6 has figures of any system. */
const hasW6 = (d: CompareData): boolean => Object.values(d.w6 ?? {}).some((x) => x && (Object.keys(x.runs).length || Object.keys(x.resumes).length));

/** W6's table (one column per system) and the ratios of each peer to ours at the longest conversation. */
export function renderW6Tables(d: CompareData): string {
  const figs = Object.fromEntries(d.systems.map((s) => [s, figuresOf(d, s).w6])) as Record<SystemName, Figures['w6']>;
  const col = (get: (x: NonNullable<Figures['w6']>) => string) => d.systems.map((s) => (figs[s] ? get(figs[s]) : '-'));
  const turns = [...d.knobs.w6Turns].sort((a, b) => a - b);
  const rows: string[][] = [];
  for (const n of turns) {
    const unique = Object.values(figs).find((x) => x?.runs[n])?.runs[n]!.uniqueBytes;
    rows.push([`W6 ${n} turns: stored bytes (row bytes)`, ...col((x) => bytes(x.runs[n]?.storedBytes))]);
    rows.push([`W6 ${n}: bytes per turn`, ...col((x) => f(x.runs[n]?.bytesPerTurn, 0))]);
    rows.push([`W6 ${n}: stored / unique content (${bytes(unique)})`, ...col((x) => f(x.runs[n]?.storedPerUnique, 1))]);
    rows.push([
      `W6 ${n}: disk bytes (heap+TOAST+indexes); rows`,
      ...col((x) => (x.runs[n] ? `${bytes(x.runs[n]!.diskBytes)}; ${x.runs[n]!.rows ?? '-'}` : '-')),
    ]);
    rows.push([`W6 ${n}: run time (s); peak RSS (MiB)`, ...col((x) => (x.runs[n] ? `${f(x.runs[n]!.runMs / 1000, 1)}; ${f(x.runs[n]!.peakRssMiB, 0)}` : '-'))]);
  }
  for (let i = 1; i < turns.length; i++) {
    const [a, b] = [turns[i - 1]!, turns[i]!];
    rows.push([
      `W6 stored bytes, ${b} turns / ${a} turns (linear: ${f(b / a, 0)}x)`,
      ...col((x) => ratio(x.runs[b]?.storedBytes ?? NaN, x.runs[a]?.storedBytes ?? NaN)),
    ]);
  }
  for (const n of d.knobs.w6ResumeTurns) {
    const at = Object.values(figs).find((x) => x?.resumes[n])?.resumes[n]!.killedAt;
    rows.push([`W6 ${n} turns, SIGKILL at turn ${at ?? '-'}: restart to ready (ms)`, ...col((x) => f(x.resumes[n]?.readyMs, 0))]);
    rows.push([`W6 ${n}: restart to first resumed turn (ms)`, ...col((x) => f(x.resumes[n]?.firstMs, 0))]);
    rows.push([
      `W6 ${n}: restart to finished (ms); ended with the answer`,
      ...col((x) => (x.resumes[n] ? `${f(x.resumes[n]!.finishedMs, 0)}; ${x.resumes[n]!.ok ? 'yes' : 'NO'}` : '-')),
    ]);
    rows.push([`W6 ${n}: peak RSS of the restarted process (MiB)`, ...col((x) => f(x.resumes[n]?.peakRssMiB, 0))]);
  }
  const figures = table(['metric', ...d.systems.map((s) => SYSTEM_LABEL[s])], rows);
  const longest = turns.at(-1) ?? NaN;
  const longestResume = [...d.knobs.w6ResumeTurns].sort((a, b) => a - b).at(-1) ?? NaN;
  const ratioRows: string[][] = [];
  for (const o of d.systems.filter((s) => s.startsWith('ours'))) {
    for (const p of d.systems.filter((s) => !s.startsWith('ours'))) {
      ratioRows.push([
        `${SYSTEM_LABEL[p]} / ${SYSTEM_LABEL[o]}`,
        ratio(figs[p]?.runs[longest]?.bytesPerTurn ?? NaN, figs[o]?.runs[longest]?.bytesPerTurn ?? NaN),
        ratio(figs[p]?.resumes[longestResume]?.firstMs ?? NaN, figs[o]?.resumes[longestResume]?.firstMs ?? NaN),
        ratio(figs[p]?.resumes[longestResume]?.finishedMs ?? NaN, figs[o]?.resumes[longestResume]?.finishedMs ?? NaN),
      ]);
    }
  }
  const ratios = ratioRows.length
    ? `\n\nW6 ratios, each a peer's figure over ours (above 1x ours is better):\n\n${table(['peer / ours', `bytes/turn (${longest})`, `first resumed turn (${longestResume})`, `restart to finished (${longestResume})`], ratioRows)}`
    : '';
  return `${figures}${ratios}`;
}

/** The figures table (one column per system) and the ratios of each peer to ours; W6's tables after them. */
export function renderTables(d: CompareData): string {
  const w1to5 = (['w1', 'w2', 'w3', 'w4', 'w5'] as const).some((w) => Object.keys(d[w]).length > 0);
  const w6 = hasW6(d) ? renderW6Tables(d) : '';
  return w1to5 || !w6 ? `${renderMainTables(d)}${w6 ? `\n\n${w6}` : ''}` : w6;
}

function renderMainTables(d: CompareData): string {
  const figs = Object.fromEntries(d.systems.map((s) => [s, figuresOf(d, s)])) as Record<SystemName, Figures>;
  const col = (get: (x: Figures) => string) => d.systems.map((s) => get(figs[s]));
  const rows: string[][] = [
    ['W1 per-step overhead p50 / p99 (ms)', ...col((x) => (x.w1 ? `${f(x.w1.p50, 3)} / ${f(x.w1.p99, 3)}` : '-'))],
    ['W1 runs timed', ...col((x) => String(x.w1?.n ?? '-'))],
    ['W2 time to join 16 branches p50 / p99 (ms)', ...col((x) => (x.w2 ? `${f(x.w2.p50)} / ${f(x.w2.p99)}` : '-'))],
    [`W3 runs/s at concurrency ${d.knobs.w3Concurrency} (${d.knobs.w3Sec} s)`, ...col((x) => f(x.w3?.runsPerSec, 1))],
    ['W3 steps/s', ...col((x) => f(x.w3?.stepsPerSec, 0))],
    ['W3 CPU-s per 1,000 steps, client + Postgres backends', ...col((x) => f(x.w3?.cpuSecPer1000Steps, 2))],
    ['W3 of which the client process', ...col((x) => f(x.w3?.clientCpuSecPer1000Steps, 2))],
    ['W3 failed runs', ...col((x) => String(x.w3?.failed ?? '-'))],
    [`W4 ${d.knobs.w4Steps}-step loop: ms per step`, ...col((x) => f(x.w4?.stepMs))],
    ['W4 rows written per step', ...col((x) => f(x.w4?.rowsPerStep, 1))],
    ['W4 bytes per step (row bytes)', ...col((x) => f(x.w4?.bytesPerStep, 0))],
    ['W4 same for a 10-step run (linearity)', ...col((x) => f(x.w4?.shortBytesPerStep, 0))],
    ['W4 disk bytes per step (heap+TOAST+indexes)', ...col((x) => f(x.w4?.diskBytesPerStep, 0))],
    ['W4 total bytes of the run (row bytes)', ...col((x) => (x.w4?.totalBytes ? String(x.w4.totalBytes) : '-'))],
    ['W4 replay the last step, to the end (ms, median)', ...col((x) => f(x.w4?.replayMs))],
  ];
  for (const n of d.knobs.w5Runs) {
    rows.push([`W5 ${n} run(s) in flight: restart to ready (ms)`, ...col((x) => f(x.w5?.[n]?.readyMs, 0))]);
    rows.push([`W5 ${n}: restart to first resumed step (ms)`, ...col((x) => f(x.w5?.[n]?.firstMs, 0))]);
    rows.push([`W5 ${n}: restart to all resumed (ms)`, ...col((x) => f(x.w5?.[n]?.allMs, 0))]);
    rows.push([
      `W5 ${n}: restart to all finished (ms); runs that did not succeed`,
      ...col((x) => (x.w5?.[n] ? `${f(x.w5[n]!.finishedMs, 0)}; ${x.w5[n]!.failed}` : '-')),
    ]);
    rows.push([`W5 ${n}: ready to first resumed step (ms)`, ...col((x) => (x.w5?.[n] ? f(x.w5[n]!.firstMs - x.w5[n]!.readyMs, 0) : '-'))]);
  }
  const figures = table(['metric', ...d.systems.map((s) => SYSTEM_LABEL[s])], rows);

  const ours = d.systems.filter((s) => s.startsWith('ours'));
  const peers = d.systems.filter((s) => !s.startsWith('ours'));
  const ratioRows: string[][] = [];
  for (const o of ours) {
    for (const p of peers) {
      const a = figs[o];
      const b = figs[p];
      ratioRows.push([
        `${SYSTEM_LABEL[p]} / ${SYSTEM_LABEL[o]}`,
        ratio(b.w1?.p50 ?? NaN, a.w1?.p50 ?? NaN),
        ratio(b.w1?.p99 ?? NaN, a.w1?.p99 ?? NaN),
        ratio(b.w2?.p50 ?? NaN, a.w2?.p50 ?? NaN),
        ratio(a.w3?.runsPerSec ?? NaN, b.w3?.runsPerSec ?? NaN),
        ratio(b.w3?.cpuSecPer1000Steps ?? NaN, a.w3?.cpuSecPer1000Steps ?? NaN),
        ratio(b.w4?.bytesPerStep ?? NaN, a.w4?.bytesPerStep ?? NaN),
        ratio(b.w4?.replayMs ?? NaN, a.w4?.replayMs ?? NaN),
        ratio(b.w5?.[d.knobs.w5Runs[0]!]?.firstMs ?? NaN, a.w5?.[d.knobs.w5Runs[0]!]?.firstMs ?? NaN),
      ]);
    }
  }
  const ratios = table(
    [
      'peer / ours (>1x: ours better)',
      'W1 p50',
      'W1 p99',
      'W2 p50',
      'W3 runs/s (ours/peer)',
      'W3 CPU/step',
      'W4 bytes/step',
      'W4 replay',
      `W5 first resumed (${d.knobs.w5Runs[0]})`,
    ],
    ratioRows,
  );
  return `${figures}\n\nRatios, each a peer's figure over ours (for W3 runs/s, ours over the peer's), so above 1x ours is better:\n\n${ratios}`;
}

export function renderMarkdown(d: CompareData, how: string): string {
  const m = d.machine;
  const perRound = d.systems
    .map(
      (s) =>
        `- ${SYSTEM_LABEL[s]}: W1 p50 per round ${(d.w1[s] ?? []).map((r) => f(summarize(r.stepMs).p50, 3)).join(', ') || '-'} ms; W3 runs/s per round ${(d.w3[s] ?? []).map((r) => f(r.runs / r.elapsedSec, 1)).join(', ') || '-'}`,
    )
    .join('\n');
  const written = d.systems
    .map((s) => {
      const w = figuresOf(d, s).w4?.written;
      return w
        ? `- ${SYSTEM_LABEL[s]}: ${Object.entries(w)
            .map(([t, x]) => `${t} ${x.rows} rows / ${x.rowBytes} B`)
            .join('; ')}`
        : undefined;
    })
    .filter(Boolean)
    .join('\n');
  const longest = [...d.knobs.w6Turns].sort((a, b) => a - b).at(-1) ?? NaN;
  const w6Written = d.systems
    .map((s) => {
      const w = d.w6?.[s]?.runs[longest]?.written;
      return w
        ? `- ${SYSTEM_LABEL[s]}: ${Object.entries(w)
            .map(([t, x]) => `${t} ${x.rows} rows / ${bytes(x.rowBytes)}`)
            .join('; ')}`
        : undefined;
    })
    .filter(Boolean)
    .join('\n');
  return `# Benchmark results: ours, LangGraph.js and DBOS, side by side

Written by \`pnpm bench\` (bench/src/compare/main.ts); overwritten on every run. History: \`bench/results.jsonl\`.

- Date: ${m.date}
- Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.os}; Postgres and nats-server on the same machine (shared with other work: compare ratios, not absolutes)
- Node: ${m.node}
- Ours: ${Object.entries(m.packages)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}
- Peers: ${Object.entries(d.peers)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}
- Knobs: ${JSON.stringify(d.knobs)}
- Whole bench: ${d.totalSec.toFixed(0)} s
- Cluster (ours alone on 1, 2 and 3 \`ao node\` processes, NATS JetStream + Postgres): see \`bench/CLUSTER.md\`, written by the \`cluster\` workload of the same command (\`BENCH_WORKLOADS=cluster pnpm bench\` refreshes it alone)
- Before/after tables of changes to our runtime (the code before and after, alternated on one machine): \`bench/BEFORE-AFTER.md\`

## Figures

${renderTables(d)}

Per round (the rounds alternate the systems, A B C D A B C D, so drift shows here rather than in one column):

${perRound}

W4, what the ${d.knobs.w4Steps}-step run wrote, by table:

${written || '-'}
${hasW6(d) ? `\nW6, what the ${longest}-turn conversation wrote, by table:\n\n${w6Written || '-'}\n` : ''}${d.notes.length ? `\nNotes:\n\n${d.notes.map((n) => `- ${n}`).join('\n')}\n` : ''}
## How measured

${how}
`;
}

/** W5's figures: per number of runs in flight, the medians of its rounds. */
function w5Figures(w5: NonNullable<CompareData['w5'][SystemName]>): NonNullable<Figures['w5']> {
  const f: NonNullable<Figures['w5']> = {};
  for (const [n, rs] of Object.entries(w5)) {
    f[Number(n)] = {
      readyMs: median(rs.map((r) => r.readyMs)),
      firstMs: median(rs.map((r) => r.firstResumedMs)),
      allMs: median(rs.map((r) => r.allResumedMs)),
      finishedMs: median(rs.map((r) => r.allFinishedMs)),
      failed: rs.reduce((a, r) => a + r.failed, 0),
    };
  }
  return f;
}

/** W6's figures: stored bytes per conversation length, and the resumes. */
function w6Figures(w6: NonNullable<NonNullable<CompareData['w6']>[SystemName]>): NonNullable<Figures['w6']> {
  const f: NonNullable<Figures['w6']> = { runs: {}, resumes: {} };
  for (const [n, r] of Object.entries(w6.runs)) {
    const stored = r.total?.rowBytes ?? null;
    f.runs[Number(n)] = {
      storedBytes: stored,
      diskBytes: r.total?.diskBytes ?? null,
      rows: r.total?.rows ?? null,
      bytesPerTurn: stored === null ? null : stored / r.turns,
      uniqueBytes: r.uniqueBytes,
      storedPerUnique: stored === null ? null : stored / r.uniqueBytes,
      runMs: r.runMs,
      peakRssMiB: r.peakRssMiB,
    };
  }
  for (const [n, r] of Object.entries(w6.resumes))
    f.resumes[Number(n)] = {
      killedAt: r.killedAt,
      readyMs: r.readyMs,
      firstMs: r.firstResumedMs,
      finishedMs: r.finishedMs,
      ok: r.ok,
      peakRssMiB: r.peakRssMiB,
    };
  return f;
}
