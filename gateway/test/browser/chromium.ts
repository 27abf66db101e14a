import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import type { Browser } from 'playwright-core';

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

export function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    // No background networking: the machine's network is closed, and Chromium would keep trying.
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Build the inspector (what `pnpm start` serves), so the tests drive the code as it is now. */
export async function buildInspector(): Promise<void> {
  await mkdir(ARTIFACTS, { recursive: true });
  const vite = fileURLToPath(new URL('./node_modules/vite/bin/vite.js', `file://${INSPECTOR}`));
  await new Promise<void>((resolve, reject) => {
    const p = spawn(process.execPath, [vite, 'build', '--logLevel', 'error'], { cwd: INSPECTOR, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`vite build exited ${code}: ${out}`))));
  });
}
