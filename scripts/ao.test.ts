import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../gateway/test/process.js';
import { buildCli } from './build-cli.mjs';

const ROOT = join(import.meta.dirname, '..');
const run = promisify(execFile);

// `pnpm ao` and `pnpm start` run the CLI bundled to JavaScript (no tsx at start), and from source
// through tsx when AO_GRAPHS names user modules.
describe('the CLI without compiling TypeScript at start', () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ao-cli-bundle-'));
    // No server on this data dir or port: the CLI opens the store itself.
    env = { ...process.env, AO_DATA_DIR: join(dir, 'data'), PORT: String(await freePort()), AO_URL: '', AO_GRAPHS: '' };
    delete env.AO_URL;
    delete env.AO_GRAPHS;
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('the bundle runs `ao runs` on an embedded store (its migrations found from their source folder)', async () => {
    // Inside the checkout, as dist/ao.mjs is: its paths to sources and packages are relative.
    const outDir = join(ROOT, 'dist', `test-${process.pid}`);
    try {
      await buildCli(ROOT, join(outDir, 'ao.mjs'));
      const { stdout } = await run(process.execPath, [join(outDir, 'ao.mjs'), 'runs'], { cwd: ROOT, env });
      expect(stdout.trim()).toBe('no runs');
      expect(await readFile(join(outDir, 'ao.mjs'), 'utf8')).not.toContain(ROOT);
    } finally {
      await rm(outDir, { recursive: true, force: true });
    }
  });

  it('with AO_GRAPHS, the launcher loads the TypeScript modules it names and registers their graphs', async () => {
    const fixture = join(ROOT, 'gateway', 'test', 'fixtures', 'crash-graphs.ts');
    const { stdout } = await run(process.execPath, [join(ROOT, 'scripts', 'ao.mjs'), 'graphs'], {
      cwd: ROOT,
      env: { ...env, AO_GRAPHS: fixture, AO_TEST_LEDGER: join(dir, 'ledger') },
    });
    expect(stdout).toMatch(/^crash-pipeline /m);
    expect(stdout).toMatch(/^triage /m);
  });
});
