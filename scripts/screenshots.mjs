#!/usr/bin/env node
// Screenshots of the inspector for the README (docs/*.png): the run page, a node's drawer, the
// timeline, the compare view of a fork and the graphs page. Starts `ao serve` on a temporary data
// directory (the offline model) unless AO_URL names a running gateway, runs the example graphs,
// and drives Debian's Chromium with playwright-core (never a downloaded browser).
//
//   node scripts/screenshots.mjs            # writes docs/inspector-*.png
//   AO_URL=http://localhost:4000 node scripts/screenshots.mjs
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { createRequire } from 'node:module';
import { setTimeout as sleep } from 'node:timers/promises';

const ROOT = join(import.meta.dirname, '..');
const DOCS = join(ROOT, 'docs');
// playwright-core is the gateway's (dev) dependency: resolve it from there.
const { chromium } = createRequire(join(ROOT, 'gateway', 'package.json'))('playwright-core');

const freePort = () =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = /** @type {import('node:net').AddressInfo} */ (s.address());
      s.close(() => resolve(port));
    });
  });

/** @returns {Promise<{ url: string, stop(): Promise<void> }>} */
async function startServer() {
  if (process.env.AO_URL) return { url: process.env.AO_URL.replace(/\/$/, ''), stop: async () => {} };
  await new Promise((resolve, reject) => {
    const b = spawn(process.execPath, [join(ROOT, 'scripts', 'build-inspector.mjs')], { cwd: ROOT, stdio: 'inherit' });
    b.on('exit', (code) => (code === 0 ? resolve(undefined) : reject(new Error(`inspector build exited ${code}`))));
  });
  const dir = await mkdtemp(join(tmpdir(), 'ao-screenshots-'));
  const port = await freePort();
  const proc = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'gateway', 'src', 'cli', 'main.ts'), 'serve'], {
    cwd: ROOT,
    env: { ...process.env, AO_DATA_DIR: dir, PORT: String(port), HOST: '127.0.0.1', AO_LOG_LEVEL: 'silent', AO_LLM_LATENCY_MS: '40' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`ao serve exited ${proc.exitCode}`);
    try {
      if ((await globalThis.fetch(`${url}/health`)).ok) break;
    } catch {
      /* not up yet */
    }
    if (i > 600) throw new Error('ao serve did not start in 60 s');
    await sleep(100);
  }
  return {
    url,
    async stop() {
      proc.kill('SIGTERM');
      await new Promise((r) => proc.once('exit', r));
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function main() {
  const server = await startServer();
  /**
   * @param {string} path
   * @param {unknown} [body] POSTed as JSON when given
   * @returns {Promise<any>}
   */
  const api = async (path, body) => {
    const res = await globalThis.fetch(
      `${server.url}${path}`,
      body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) },
    );
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return res.json();
  };
  /** @param {string} id */
  const ended = async (id) => {
    for (;;) {
      const run = await api(`/runs/${id}`);
      if (!['pending', 'running'].includes(run.status)) return run;
      await sleep(200);
    }
  };
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    await mkdir(DOCS, { recursive: true });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 }, deviceScaleFactor: 1 });
    page.on('pageerror', (/** @type {Error} */ e) => process.stderr.write(`page error: ${e.stack ?? e}\n`));
    page.on('console', (/** @type {{ type(): string, text(): string }} */ m) => m.type() === 'error' && process.stderr.write(`console: ${m.text()}\n`));
    /** @param {string} name @param {{ fullPage?: boolean }} [o] */
    const shot = (name, o = {}) => page.screenshot({ path: join(DOCS, `inspector-${name}.png`), ...o });

    const swarm = await api('/runs', { graph: 'research-swarm', input: { question: 'What is durable execution, and who needs it?' } });
    const dc = await api('/runs', { graph: 'draft-critique', input: { brief: 'Why agent runs should survive a crash' } });
    await ended(swarm.id);
    await ended(dc.id);

    // The run page of a swarm: graph, budget, input and output, message lanes.
    await page.goto(`${server.url}/#/runs/${swarm.id}`);
    await page.waitForSelector('[data-testid=run-page][data-ended=succeeded]', { state: 'attached' });
    await page.waitForSelector('[data-testid=run-output][data-has-output=true]');
    await shot('run', { fullPage: true });

    // The timeline of the same run.
    await page.click('[data-testid=tab-timeline]');
    await page.waitForSelector('[data-testid=timeline-bar]');
    await page.locator('[data-testid=timeline]').scrollIntoViewIfNeeded();
    await page.locator('[data-testid=timeline]').evaluate((/** @type {any} */ el) => el.closest('section')?.scrollIntoView());
    await shot('timeline');

    // A loop (draft-critique): the drawer of `draft`, two iterations with their prompts and answers.
    await page.goto(`${server.url}/#/runs/${dc.id}`);
    await page.waitForSelector('[data-testid=run-page][data-ended=succeeded]', { state: 'attached' });
    await page.click('[data-testid=graph] [data-testid=node-draft]');
    await page.waitForSelector('[data-testid=node-drawer][data-node=draft] [data-testid=answer]');
    await shot('drawer');

    // A fork of draft-critique with new instructions for `draft`, compared with its original.
    const { checkpoints } = await api(`/runs/${dc.id}/checkpoints`);
    const step = checkpoints.find((/** @type {{ node: string | null }} */ c) => c.node === 'outline').step;
    const fork = await api(`/runs/${dc.id}/replay`, {
      fromStep: step,
      mode: 'live',
      overrides: { nodes: { draft: { instructions: 'Write the draft as a numbered list of short points.' } } },
    });
    await ended(fork.id);
    await page.goto(`${server.url}/#/compare/${dc.id}/${fork.id}`);
    await page.waitForSelector('[data-testid=compare][data-ready=true]');
    await shot('compare', { fullPage: true });

    // The graphs page: a graph drawn with its loop, budget, input schema and start form.
    await page.goto(`${server.url}/#/graphs/draft-critique`);
    await page.waitForSelector('[data-testid=graph-detail][data-graph=draft-critique]');
    await page.waitForSelector('[data-testid=graph] [data-testid=node-publish]');
    await shot('graphs', { fullPage: true });
    process.stdout.write(`screenshots written to ${DOCS}\n`);
  } finally {
    await browser.close();
    await server.stop();
  }
}

main().catch((e) => {
  process.stderr.write(`error: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
