import { writeFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { startRuntime } from '@ao/gateway';
import { loadConfig } from '@ao/runtime';
import { machineInfo } from './env.js';
import { percentile } from './measure.js';
import { createScratchDatabase, redact } from './postgres.js';

/**
 * Memory per waiting run: runs that wait for a person are checkpointed and passivated, so a node's
 * resident memory must not grow with them. N runs of a graph whose entry node needs an approval
 * are started on one node (Postgres + in-process bus, the store outside the process so its memory
 * is not the node's) and left waiting; the node's RSS and heap are sampled (after a GC when
 * `--expose-gc` is on) as they accumulate. Then some are answered, timing answer -> succeeded.
 */
export const waitGraph = (): GraphBuilder<unknown> =>
  graph('bench-wait')
    .node('gate', { agent: 'pipeline', approval: { prompt: 'Go?' } })
    .node('work', { agent: 'pipeline' })
    .edge('gate', 'work') as GraphBuilder<unknown>;

export interface WaitingSample {
  waiting: number;
  rssMiB: number;
  heapMiB: number;
}

export interface WaitingReport {
  runs: number;
  concurrency: number;
  gc: boolean;
  samples: WaitingSample[];
  /** Runs hosted (actors in memory) once all wait. */
  hostedWhileWaiting: number;
  submitSec: number;
  answered: number;
  answerToSucceededMs: { p50: number; p99: number };
}

const MiB = (n: number) => Math.round((n / 1024 / 1024) * 10) / 10;

function sample(waiting: number): WaitingSample {
  (globalThis as { gc?: () => void }).gc?.();
  const m = process.memoryUsage();
  return { waiting, rssMiB: MiB(m.rss), heapMiB: MiB(m.heapUsed) };
}

export async function waitingBench(o: {
  runs: number;
  concurrency: number;
  answer: number;
  log: (s: string) => void;
}): Promise<WaitingReport | { skipped: string }> {
  const db = await createScratchDatabase();
  if (!db.ok) return { skipped: db.reason };
  o.log(`[bench] waiting runs: ${o.runs} on Postgres (${redact(db.url)})`);
  const rt = await startRuntime(loadConfig({ AO_NODE_ID: 'bench-wait', AO_LLM_LATENCY_MS: '0', AO_LOG_LEVEL: 'warn', DATABASE_URL: db.url }), {
    graphs: [waitGraph()],
  });
  try {
    const { engine } = rt;
    const ids: string[] = [];
    const startOne = async () => {
      const run = await engine.startRun({ graph: 'bench-wait' });
      await engine.waitForRun(run.id, 120_000);
      ids.push(run.id);
    };
    // Warm-up, then the baseline.
    for (let i = 0; i < 100; i++) await startOne();
    const samples = [sample(ids.length)];
    const every = Math.max(1, Math.floor(o.runs / 4));
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: o.concurrency }, async () => {
        while (next < o.runs) {
          next += 1;
          await startOne();
          if (ids.length % every === 0) samples.push(sample(ids.length));
        }
      }),
    );
    const submitSec = (performance.now() - t0) / 1000;
    samples.push(sample(ids.length));
    const hostedWhileWaiting = engine.activeRuns().length;
    const notWaiting = (await Promise.all(ids.slice(-50).map((id) => engine.queries.getRun(id)))).filter((r) => r?.status !== 'waiting');
    if (notWaiting.length) throw new Error(`runs that should wait: ${notWaiting.map((r) => `${r?.id} ${r?.status}`).join(', ')}`);

    // Answer some: time from the answer to the run's success.
    const times: number[] = [];
    for (const id of ids.slice(0, o.answer)) {
      const a = performance.now();
      await engine.signal(id, { node: 'gate', payload: { approved: true } });
      for (;;) {
        const r = await engine.queries.getRun(id);
        if (r?.status === 'succeeded') break;
        if (r && r.status !== 'running' && r.status !== 'waiting') throw new Error(`run ${id} ended ${r.status}`);
        await new Promise((res) => setTimeout(res, 1));
      }
      times.push(performance.now() - a);
    }
    times.sort((x, y) => x - y);
    return {
      runs: ids.length,
      concurrency: o.concurrency,
      gc: typeof (globalThis as { gc?: unknown }).gc === 'function',
      samples,
      hostedWhileWaiting,
      submitSec,
      answered: times.length,
      answerToSucceededMs: { p50: percentile(times, 50), p99: percentile(times, 99) },
    };
  } finally {
    await rt.close();
    await db.drop();
  }
}

export function renderWaiting(r: WaitingReport | { skipped: string }): string {
  if ('skipped' in r) return `## Waiting runs\n\nSkipped: ${r.skipped}\n`;
  const first = r.samples[0]!;
  const last = r.samples.at(-1)!;
  const perRunKiB = ((last.rssMiB - first.rssMiB) * 1024) / Math.max(1, last.waiting - first.waiting);
  return [
    '## Waiting runs (human in the loop): memory per waiting run',
    '',
    `${r.runs} runs of \`bench-wait\` (an approval before its entry node) started ${r.concurrency} at a time on one node (Postgres + in-process bus) and left waiting; RSS and heap sampled${r.gc ? ' after a forced GC' : ' (no --expose-gc: no forced GC)'}.`,
    '',
    '| runs waiting | RSS (MiB) | heap used (MiB) |',
    '|---:|---:|---:|',
    ...r.samples.map((s) => `| ${s.waiting} | ${s.rssMiB} | ${s.heapMiB} |`),
    '',
    `- Runs hosted in memory once all waited: **${r.hostedWhileWaiting}** (every waiting run passivated: no actor, no lease).`,
    `- From ${first.waiting} to ${last.waiting} waiting runs: heap ${Math.round((last.heapMiB - first.heapMiB) * 10) / 10} MiB (${(((last.heapMiB - first.heapMiB) * 1024) / Math.max(1, last.waiting - first.waiting)).toFixed(2)} KiB per run, the bench's own list of run ids included), RSS ${Math.round((last.rssMiB - first.rssMiB) * 10) / 10} MiB (${perRunKiB.toFixed(2)} KiB per run; RSS moves with the allocator, the heap is the steadier figure).`,
    `- Started and put to sleep in ${r.submitSec.toFixed(1)} s (${(r.runs / r.submitSec).toFixed(0)} runs/s).`,
    `- Answer -> run succeeded (resume from the checkpoint, 1 more node), ${r.answered} runs one at a time: p50 ${r.answerToSucceededMs.p50.toFixed(1)} ms, p99 ${r.answerToSucceededMs.p99.toFixed(1)} ms.`,
    '',
  ].join('\n');
}

// Standalone: `node --expose-gc --import tsx bench/src/waiting.ts` writes bench/WAITING.md.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const runs = Number(process.env.BENCH_WAITING_RUNS ?? 10_000);
  const r = await waitingBench({ runs, concurrency: 32, answer: 200, log: console.log });
  const m = machineInfo();
  const md = `# Waiting runs bench\n\n- Date: ${m.date}\n- Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.os}\n- Node: ${m.node}\n\n${renderWaiting(r)}`;
  console.log(md);
  await writeFile(fileURLToPath(new URL('../WAITING.md', import.meta.url)), md);
}
