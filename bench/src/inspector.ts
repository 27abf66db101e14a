// `pnpm --filter @ao/bench bench:inspector`: how fast the inspector's run page becomes usable on a
// run of 10,184 envelopes. The run is written straight into a fresh store (the browser test's
// fixture, gateway/test/fixtures/big-run.ts), a real `ao serve` opens it, and Debian's Chromium
// loads the page ROUNDS times. Writes INSPECTOR-RESULTS.md and appends a line to results.jsonl.
// The browser helpers are the gateway's test harness (they bring playwright-core with them).
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildInspector, CHROMIUM, launch, runPage } from '../../gateway/test/browser/chromium.js';
import { RECORD_LONG_TASKS } from '../../gateway/test/browser/page-scripts.js';
import { writeBigRunTo } from '../../gateway/test/fixtures/big-run.js';
import { startServer } from '../../gateway/test/process.js';
import { intEnv, machineInfo } from './env.js';

const RESULTS_MD = fileURLToPath(new URL('../INSPECTOR-RESULTS.md', import.meta.url));
const RESULTS_JSONL = fileURLToPath(new URL('../results.jsonl', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../../gateway/test/stream-fixtures.ts', import.meta.url));
/** The issue's targets (25): interactive within 3 s, a step of the slider within 0.2 s. */
const TARGET = { timeToInteractiveMs: 3_000, stepBackMs: 200 };

export interface PageFigures {
  /** Navigation until every envelope is loaded and drawn and the page shows the run ended. */
  loadAllEventsMs: number;
  /** A step back (the "previous" button) until the page shows that position. */
  stepBackMs: number;
  /** Load plus one step: the page is usable. */
  timeToInteractiveMs: number;
  /** The slider moved to the middle of the run until the page shows that position. */
  seekToMiddleMs: number;
  longestTaskMs: number;
  /** Sum over long tasks of their time past 50 ms. */
  totalBlockingMs: number;
  longTasks: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const rounds = intEnv('BENCH_INSPECTOR_ROUNDS', 5);
  const dir = await mkdtemp(join(tmpdir(), 'ao-bench-inspector-'));
  try {
    const t = performance.now();
    const [run] = await Promise.all([writeBigRunTo(dir), buildInspector()]);
    console.log(
      `[bench:inspector] run ${run.id}: ${run.events} envelopes written into the store and the inspector built in ${Math.round(performance.now() - t)} ms`,
    );
    const server = await startServer({ AO_DATA_DIR: dir, AO_GRAPHS: FIXTURES });
    const browser = await launch();
    const all: PageFigures[] = [];
    // The machine's 1-minute load average around the rounds: these figures move with it.
    const load = [loadavg()[0]!];
    try {
      for (let i = 0; i < rounds; i++) {
        const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
        await page.addInitScript({ content: RECORD_LONG_TASKS });
        const t0 = performance.now();
        await page.goto(`${server.url}/#/runs/${run.id}`);
        await runPage(page, `[data-events="${run.events}"][data-ended=succeeded]`);
        const loadMs = performance.now() - t0;
        const t1 = performance.now();
        await page.click('[data-testid=step-prev]');
        await runPage(page, `[data-position="${run.events - 1}"]`);
        const stepMs = performance.now() - t1;
        const t2 = performance.now();
        await page.locator('[data-testid=step-slider]').fill(String(Math.floor(run.events / 2)));
        await runPage(page, `[data-position="${Math.floor(run.events / 2)}"]`);
        const seekMs = performance.now() - t2;
        const longTasks = (await page.evaluate('window.longTasks')) as number[];
        const f: PageFigures = {
          loadAllEventsMs: Math.round(loadMs),
          stepBackMs: Math.round(stepMs),
          timeToInteractiveMs: Math.round(loadMs + stepMs),
          seekToMiddleMs: Math.round(seekMs),
          longestTaskMs: Math.round(Math.max(0, ...longTasks)),
          totalBlockingMs: Math.round(longTasks.reduce((s, d) => s + Math.max(0, d - 50), 0)),
          longTasks: longTasks.length,
        };
        console.log(`[bench:inspector] round ${i + 1}/${rounds}: ${JSON.stringify(f)}`);
        all.push(f);
        await page.close();
      }
    } finally {
      load.push(loadavg()[0]!);
      await browser.close();
      await server.stop();
    }
    const keys = Object.keys(all[0]!) as Array<keyof PageFigures>;
    const med = Object.fromEntries(keys.map((k) => [k, median(all.map((f) => f[k]))])) as unknown as PageFigures;
    const machine = machineInfo();
    const report = {
      kind: 'inspector',
      machine,
      loadAverage: load.map((l) => Math.round(l * 10) / 10),
      events: run.events,
      rounds,
      median: med,
      all,
      target: TARGET,
    };
    await appendFile(RESULTS_JSONL, `${JSON.stringify(report)}\n`);
    await writeFile(RESULTS_MD, markdown(report));
    console.log(`[bench:inspector] median of ${rounds}: ${JSON.stringify(med)}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function markdown(r: {
  machine: ReturnType<typeof machineInfo>;
  loadAverage: number[];
  events: number;
  rounds: number;
  median: PageFigures;
  all: PageFigures[];
}): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const row = (name: string, k: keyof PageFigures, target?: number) =>
    `| ${name} | ${s(r.median[k])} | ${s(Math.min(...r.all.map((f) => f[k])))} - ${s(Math.max(...r.all.map((f) => f[k])))} | ${target === undefined ? '' : `${s(target)} ${r.median[k] <= target ? 'met' : '**missed**'}`} |`;
  return `# The inspector on a run of ${r.events.toLocaleString('en-US')} envelopes

Written by \`pnpm --filter @ao/bench bench:inspector\` (\`bench/src/inspector.ts\`) on ${r.machine.date.slice(0, 10)}:
${r.machine.cpu}, ${r.machine.cores} cores, Node ${r.machine.node}, Chromium ${CHROMIUM}. The run (three swarms of 16 branches,
40 tool calls each) is written straight into the store of a fresh \`ao serve\` (PGlite); each of ${r.rounds} rounds opens
\`/#/runs/<id>\` in a new page. Medians, then the range over the rounds. Other processes shared the machine: its
1-minute load average was ${r.loadAverage.join(' before and ')} after the rounds (on 2 cores, anything past 2 means waiting for a core).

| figure | median | range | target |
|---|---|---|---|
${row('time to interactive (every envelope loaded and drawn, then a step back answered)', 'timeToInteractiveMs', TARGET.timeToInteractiveMs)}
${row('loading every envelope', 'loadAllEventsMs')}
${row('a step back', 'stepBackMs', TARGET.stepBackMs)}
${row('the slider to the middle', 'seekToMiddleMs')}
${row('longest main-thread task', 'longestTaskMs')}
${row('total blocking time', 'totalBlockingMs')}
`;
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error('[bench:inspector] failed:', e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  },
);
