import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import type { Envelope } from '@ao/runtime';
import { startServer } from '../process.js';
import type { Server } from '../process.js';

/** Debian's Chromium (`apt-get install -y chromium`; `.ci/run` installs it). Never a downloaded browser. */
export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
const INSPECTOR = fileURLToPath(new URL('../../../inspector/', import.meta.url));

/**
 * Whether the browser tests can run here. Under CI they must: a missing Chromium fails them
 * instead of skipping them.
 */
export function chromiumAvailable(): boolean {
  if (existsSync(CHROMIUM)) return true;
  if (process.env.CI) throw new Error(`CI is set and ${CHROMIUM} is missing: install it with apt-get install -y chromium (.ci/run does)`);
  console.warn(`browser tests skipped: ${CHROMIUM} is missing (apt-get install -y chromium)`);
  return false;
}

/** A full-page screenshot into gateway/test/browser/artifacts/. */
export const shot = (p: Page, name: string) => p.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });

/** The run page once it carries `attrs` (e.g. `[data-status=succeeded]`). */
export const runPage = (p: Page, attrs: string) => p.waitForSelector(`[data-testid=run-page]${attrs}`, { state: 'attached', timeout: 60_000 });

/** JSON calls to the gateway at `url()` (read when called: the server starts in beforeAll), and a run's events. */
export function gatewayApi(url: () => string) {
  const api = async <T>(path: string, init?: RequestInit): Promise<T> => {
    const res = await fetch(`${url()}${path}`, init);
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as T;
  };
  const events = async (id: string) => (await api<{ events: Envelope[] }>(`/runs/${id}/events?limit=1000`)).events;
  return { api, events };
}

export function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    // No background networking: the machine's network is closed, and Chromium would keep trying.
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
}

/**
 * Build the inspector (what `pnpm start` serves), so the tests drive the code as it is now. It is
 * built beside the old build and swapped in whole: other test files start servers meanwhile, and
 * none may see a half-written build.
 */
export async function buildInspector(): Promise<void> {
  await mkdir(ARTIFACTS, { recursive: true });
  const cache = join(INSPECTOR, 'node_modules', '.cache');
  await mkdir(cache, { recursive: true });
  // Test files run in workers of one vitest process (the same parent pid): the first builds, the
  // others wait for it and use that build. Rebuilding would swap the folder under a server another
  // file is testing against (its page then loads nothing: the CI failure of the 10k-event test).
  const built = join(cache, `built-for-${process.ppid}`);
  const lock = join(cache, 'build.lock');
  for (;;) {
    if (existsSync(built)) return;
    try {
      await mkdir(lock);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      // A lock left by a killed run is stale after 5 minutes.
      const age = Date.now() - (await stat(lock).catch(() => ({ mtimeMs: Date.now() }))).mtimeMs;
      if (age > 300_000) await rm(lock, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  try {
    await buildOnce(cache);
    await writeFile(built, String(Date.now()));
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

async function buildOnce(cache: string): Promise<void> {
  const next = join(cache, `inspector-build-${process.pid}`);
  const old = join(cache, `inspector-old-${process.pid}`);
  const vite = join(INSPECTOR, 'node_modules', 'vite', 'bin', 'vite.js');
  await new Promise<void>((resolve, reject) => {
    const p = spawn(process.execPath, [vite, 'build', '--logLevel', 'error'], {
      cwd: INSPECTOR,
      env: { ...process.env, AO_INSPECTOR_OUT: next },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`vite build exited ${code}: ${out}`))));
  });
  const build = join(INSPECTOR, 'build');
  // Another test file may be swapping in its own build at the same moment: whichever rename loses
  // (the old build already moved, or a new one already in place) tries again.
  for (let attempt = 1; ; attempt++) {
    try {
      if (existsSync(build)) await rename(build, old);
      await rename(next, build);
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (attempt >= 20 || !['ENOENT', 'ENOTEMPTY', 'EEXIST'].includes(code ?? '')) throw e;
      await rm(old, { recursive: true, force: true });
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await rm(old, { recursive: true, force: true });
}

/** A real `ao serve` on a fresh data directory, serving the inspector as built now, and a Chromium page. */
export interface InspectorSession {
  server: Server;
  browser: Browser;
  page: Page;
  close(): Promise<void>;
}

/**
 * Build the inspector, start `ao serve` with `env` on a temporary data directory (`prefix`), open a
 * page. `prepare` fills the data directory before the server opens it (e.g. a run written into its store).
 */
export async function openInspector(
  prefix: string,
  env: Record<string, string> = {},
  o: { prepare?: (dir: string) => Promise<void> } = {},
): Promise<InspectorSession> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  await Promise.all([buildInspector(), o.prepare?.(dir)]);
  const server = await startServer({ AO_DATA_DIR: dir, ...env });
  const browser = await launch();
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('pageerror', (e) => console.error('page error:', e));
  return {
    server,
    browser,
    page,
    async close() {
      await browser.close();
      await server.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
