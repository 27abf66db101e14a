import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../gateway/test/process.js';
import { packPackages } from './pack-packages.mjs';

const ROOT = join(import.meta.dirname, '..');

// The README's "In your own project": the packages packed as tarballs, installed with plain npm in
// a project outside the repository, a graph and a tool written there in TypeScript, and `ao serve`
// from that project's node_modules/.bin running them. Slow (a clean tsc build, a pack and an npm
// install; on a cold npm cache the install downloads the packages' dependencies from the
// registry), so nothing here waits on a clock: each step waits for its process or its state, and
// the timeouts are only a net for a hung step.
const SLOW = 15 * 60_000;

/** The environment without what the parent's pnpm or a developer's shell would pass to npm or ao. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|pnpm_|AO_)/i.test(k) || ['DATABASE_URL', 'NATS_URL', 'INIT_CWD', 'PORT', 'HOST'].includes(k)) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/** Runs a command to completion; rejects with its output when it fails. */
function run(cmd: string, args: string[], cwd: string, env = cleanEnv()): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', reject);
    p.on('exit', (code, signal) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} failed (${signal ?? code}):\n${out}`))));
  });
}

const INSPECTOR_PAGE = '<!doctype html><title>the packed inspector</title>';

const GRAPHS = `import { z } from 'zod';
import { graph } from '@ao/graphs';
import { defineTool } from '@ao/runtime';

export const tools = [
  defineTool({
    name: 'shout',
    description: 'Say it louder.',
    effect: 'idempotent',
    input: z.object({ text: z.string() }),
    handler: async ({ text }, ctx) => ({ shouted: text.toUpperCase() + '!', key: ctx.idempotencyKey }),
  }),
];

export const graphs = [
  graph('greet')
    .node('draft', { agent: 'pipeline', instructions: 'Draft a greeting.' })
    .node('send', { agent: 'pipeline', tools: ['shout'], args: () => ({ shout: { text: 'hello from my project' } }) })
    .edge('draft', 'send'),
];
`;

const VERIFY = `import { verifyRecording } from '@ao/gateway/testing';
import { graphs, tools } from './my-graphs.ts';

const verdict = await verifyRecording('greet.json', graphs, { tools });
console.log('verified:', verdict.outcome);
`;

describe('in your own project: the packed packages installed with npm outside the repository', () => {
  let dir: string;
  let project: string;
  const timings: Record<string, number> = {};
  const timed = async <T>(name: string, f: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    try {
      return await f();
    } finally {
      timings[name] = Date.now() - t0;
    }
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ao-own-project-'));
    project = join(dir, 'my-project');
    await mkdir(project);
    // A stand-in for the inspector's build: a vite build of the real one here would race the
    // browser tests', which swap inspector/build/ under their servers. What is tested is that the
    // gateway tarball carries the build it is given and `ao serve` serves it.
    const inspector = join(dir, 'inspector-build');
    await mkdir(inspector);
    await writeFile(join(inspector, 'index.html'), INSPECTOR_PAGE);
    const tarballs = await timed('pack', () => packPackages(ROOT, join(dir, 'tarballs'), { inspector }));
    await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'my-project', private: true, type: 'module' }, null, 2));
    await writeFile(join(project, 'my-graphs.ts'), GRAPHS);
    await writeFile(
      join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2023', strict: true, noEmit: true, skipLibCheck: true, types: [] },
        files: ['my-graphs.ts'],
      }),
    );
    await timed('npm install', () =>
      run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs, 'zod@4.6.7'], project),
    );
  }, SLOW);

  afterAll(async () => {
    console.log(
      `own-project test: ${Object.entries(timings)
        .map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`)
        .join(', ')}`,
    );
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('each installed package exports compiled JavaScript with types and pins its dependencies', async () => {
    for (const name of ['graphs', 'runtime', 'actors', 'gateway']) {
      const manifest = JSON.parse(await readFile(join(project, 'node_modules', '@ao', name, 'package.json'), 'utf8')) as {
        exports: unknown;
        dependencies: Record<string, string>;
        bin?: unknown;
      };
      const main = { '.': { types: './dist/mod.d.ts', default: './dist/mod.js' } };
      // The gateway also ships `verifyRecording` for users' own test suites; the graphs, the spend
      // arithmetic the inspector shares with the ledger.
      const extra: Record<string, Record<string, unknown>> = {
        gateway: { './testing': { types: './dist/testing/mod.d.ts', default: './dist/testing/mod.js' } },
        graphs: { './spend': { types: './dist/spend.d.ts', default: './dist/spend.js' } },
      };
      expect(manifest.exports).toEqual({ ...main, ...extra[name] });
      for (const [dep, version] of Object.entries(manifest.dependencies)) expect(version, `${name}: ${dep}`).toMatch(/^\d+\.\d+\.\d+$/);
      expect(manifest.bin).toEqual(name === 'gateway' ? { ao: './bin/ao.mjs' } : undefined);
    }
  });

  it(
    'the graph module type-checks against the installed packages (exports carry .d.ts types)',
    async () => {
      const tsc = createRequire(join(ROOT, 'package.json')).resolve('typescript/bin/tsc');
      await timed('tsc', () => run(process.execPath, [tsc, '-p', join(project, 'tsconfig.json')], project));
    },
    SLOW,
  );

  it(
    'ao serve from node_modules/.bin runs the project graph and tool (AO_GRAPHS in TypeScript) and serves the inspector',
    async () => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const env = cleanEnv({ AO_GRAPHS: './my-graphs.ts', AO_DATA_DIR: join(dir, 'data'), PORT: String(port), HOST: '127.0.0.1', AO_LOG_LEVEL: 'silent' });
      const server: ChildProcess = spawn(join(project, 'node_modules', '.bin', 'ao'), ['serve'], { cwd: project, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let log = '';
      server.stdout!.on('data', (d: Buffer) => (log += d.toString()));
      server.stderr!.on('data', (d: Buffer) => (log += d.toString()));
      const exited = new Promise<number | null>((r) => server.once('exit', (code) => r(code)));
      let gone = false;
      void exited.then(() => (gone = true));
      try {
        await timed('serve up', async () => {
          for (;;) {
            if (gone) throw new Error(`ao serve exited: ${log}`);
            const ok = await fetch(`${url}/health`).then(
              (r) => r.ok,
              () => false,
            );
            if (ok) return;
            await new Promise((r) => setTimeout(r, 100));
          }
        });
        const graphs = JSON.stringify(await (await fetch(`${url}/graphs`)).json());
        expect(graphs).toContain('"greet"');

        const page = await fetch(`${url}/`);
        expect(page.status).toBe(200);
        expect(await page.text()).toBe(INSPECTOR_PAGE);

        const started = await fetch(`${url}/runs`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ graph: 'greet', input: {} }),
        });
        expect(started.status).toBe(202);
        const { id } = (await started.json()) as { id: string };
        const final = await timed('run', async () => {
          for (;;) {
            const r = (await (await fetch(`${url}/runs/${id}`)).json()) as { status: string; error: unknown };
            if (!['pending', 'running'].includes(r.status)) return r;
            if (gone) throw new Error(`ao serve exited: ${log}`);
            await new Promise((res) => setTimeout(res, 100));
          }
        });
        expect(final).toMatchObject({ status: 'succeeded', error: null });
        const events = JSON.stringify(await (await fetch(`${url}/runs/${id}/events`)).json());
        expect(events).toContain('HELLO FROM MY PROJECT!');
        // The CLI of the project talks to that server.
        const runs = await run(join(project, 'node_modules', '.bin', 'ao'), ['runs'], project, cleanEnv({ AO_URL: url }));
        expect(runs).toMatch(new RegExp(`^${id}\\s+greet\\s+succeeded`, 'm'));
        // The run exported as a file and verified from the project's own code, as a test suite would.
        await run(join(project, 'node_modules', '.bin', 'ao'), ['export', id, '-o', 'greet.json'], project, cleanEnv({ AO_URL: url }));
        await writeFile(join(project, 'verify.ts'), VERIFY);
        const verified = await run(process.execPath, ['--import', 'tsx', 'verify.ts'], project, cleanEnv({}));
        expect(verified).toContain('verified: identical');
      } finally {
        if (!gone) server.kill('SIGTERM');
      }
      expect(await exited).toBe(0);
    },
    SLOW,
  );
});
