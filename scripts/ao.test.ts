import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../gateway/test/process.js';
import { buildCli, buildDir, cliInputs, ENTRY, pruneBuilds } from './build-cli.mjs';
import { STAMP } from './stamp.mjs';

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

  // One build for the tests that run it: inside the checkout, as dist/cli-<hash>/ is (its paths
  // to sources and packages are relative).
  let outDir: string;
  let buildParent: string;
  beforeAll(async () => {
    buildParent = join(ROOT, 'dist', `test-${process.pid}`);
    outDir = buildDir(buildParent, 'test0000000000000000');
    await mkdir(buildParent, { recursive: true });
    await buildCli(ROOT, outDir, 'test');
  }, 120_000);
  afterAll(() => rm(buildParent, { recursive: true, force: true }));

  it('the bundle runs `ao runs` on an embedded store (its migrations found from their source folder)', async () => {
    const { stdout } = await run(process.execPath, [join(outDir, ENTRY), 'runs'], { cwd: ROOT, env });
    expect(stdout.trim()).toBe('no runs');
    for (const f of await readdir(outDir)) expect(await readFile(join(outDir, f), 'utf8')).not.toContain(ROOT);
    expect((await readFile(join(outDir, STAMP), 'utf8')).trim()).toBe('test');
  });

  it('the bundle runs `ao runs` against a gateway', async () => {
    const seen: string[] = [];
    const gateway = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.setHeader('content-type', 'application/json');
      res.end(req.url === '/health' ? '{"status":"ok"}' : '{"runs":[]}');
    });
    await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(gateway.address() as AddressInfo).port}`;
      const { stdout } = await run(process.execPath, [join(outDir, ENTRY), 'runs'], { cwd: ROOT, env: { ...env, AO_URL: url } });
      expect(stdout.trim()).toBe('no runs');
      expect(seen).toEqual(['GET /health', 'GET /runs?limit=20']);
    } finally {
      await new Promise((r) => gateway.close(r));
    }
  });

  /** The installed packages a chunk loads before it runs a line (its static imports, through shared chunks). */
  const staticPackages = async (file: string): Promise<string[]> => {
    const loaded = new Set<string>();
    const packages = new Set<string>();
    const visit = async (f: string) => {
      if (loaded.has(f)) return;
      loaded.add(f);
      const src = await readFile(f, 'utf8');
      for (const m of src.matchAll(/^(?:import|export)\s[^;]*?from\s*"([^"]+)"|^import\s*"([^"]+)"/gms)) {
        const spec = (m[1] ?? m[2])!;
        if (spec.startsWith('./chunk-')) await visit(join(dirname(f), spec));
        else if (!spec.startsWith('node:')) packages.add(spec.replace(/.*\/node_modules\/(@[^/]+\/[^/]+|[^/]+)\/.*/, '$1'));
      }
    };
    await visit(file);
    return [...packages].sort();
  };

  it('the entry and the chunks it imports statically load no engine, store, HTTP server, bus, telemetry or MCP package', async () => {
    expect(await staticPackages(join(outDir, ENTRY))).toEqual(['zod']);
    // The heavy ones are still in the build, in chunks of their own.
    const all = (await Promise.all((await readdir(outDir)).filter((f) => f.endsWith('.mjs')).map((f) => readFile(join(outDir, f), 'utf8')))).join('\n');
    for (const p of ['fastify', '@electric-sql/pglite', '@nats-io/transport-node', '@opentelemetry/sdk-node', '@modelcontextprotocol/sdk', 'nact', 'pg@'])
      expect(all).toContain(p);
  });

  it('the engine loads the OpenTelemetry SDK, the MCP SDK and the NATS client only when it uses them', async () => {
    const engine = (await readdir(outDir)).find((f) => /^node-[A-Z0-9]+\.mjs$/.test(f));
    expect(engine).toBeDefined();
    const loaded = await staticPackages(join(outDir, engine!));
    expect(loaded).toContain('@electric-sql/pglite');
    for (const p of [
      '@opentelemetry/sdk-node',
      '@opentelemetry/exporter-trace-otlp-http',
      '@opentelemetry/exporter-metrics-otlp-http',
      '@modelcontextprotocol/sdk',
      '@nats-io/transport-node',
      '@nats-io/jetstream',
      '@nats-io/kv',
      'fastify',
    ])
      expect(loaded).not.toContain(p);
  });

  it('`ao serve` starts without a warning (no FastifyDeprecation, no Node deprecation), makes its new data directory from a template, and exits 0 on Ctrl-C', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [join(outDir, ENTRY), 'serve'], {
      cwd: ROOT,
      env: { ...env, AO_DATA_DIR: join(dir, 'serve-data'), AO_CACHE_DIR: join(dir, 'serve-cache'), PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      // Up, and done starting: the banner's last line is printed after the server listens.
      await expect.poll(() => out, { timeout: 60_000, interval: 100 }).toContain('API docs:');
      expect((await fetch(`http://127.0.0.1:${port}/health`)).status).toBe(200);
      child.kill('SIGINT');
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
    expect(out).not.toMatch(/Deprecation|DeprecationWarning|\[FSTDEP|\[DEP0|Warning:/);
    // The bundle found PGlite and the migrations from their own places: its new data directory
    // came from a template it built in AO_CACHE_DIR (not from initdb, which it would have said).
    expect(out).not.toContain('no PGlite template');
    expect(await readdir(join(dir, 'serve-cache', 'pglite-templates'))).toHaveLength(1);
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

// Each build is a directory named by its inputs' hash: a process keeps the chunks it imports
// later however many builds happen meanwhile; old builds are pruned, the newest few kept.
describe('CLI builds: one directory per build, old ones pruned', () => {
  let dist: string;
  beforeAll(async () => {
    dist = await mkdtemp(join(tmpdir(), 'ao-cli-dist-'));
  });
  afterAll(() => rm(dist, { recursive: true, force: true }));

  const fakeBuild = async (hash: string, builtSecondsAgo: number) => {
    const d = buildDir(dist, hash);
    await mkdir(d, { recursive: true });
    await writeFile(join(d, ENTRY), '');
    await writeFile(join(d, STAMP), `${hash}\n`);
    const t = new Date(Date.now() - builtSecondsAgo * 1000);
    await utimes(join(d, STAMP), t, t);
    return d;
  };

  it('every input the build hash names exists (a missing one would never trigger a rebuild)', () => {
    const { trees, files } = cliInputs(ROOT);
    for (const f of [...trees, ...files]) expect(existsSync(f), f).toBe(true);
  });

  it('keeps the newest builds and the one in use, and removes the rest, dead temporary builds and the single-file build', async () => {
    const newest = await fakeBuild('a'.repeat(64), 10);
    const second = await fakeBuild('b'.repeat(64), 20);
    const third = await fakeBuild('c'.repeat(64), 30);
    const inUse = await fakeBuild('d'.repeat(64), 40);
    const unstamped = join(dist, 'cli-eeeeeeeeeeeeeeee');
    await mkdir(unstamped);
    // A temporary build of a process that is gone, and one of a process still building (this one).
    const deadTmp = join(dist, '.tmp-cli-999999999-1');
    const liveTmp = join(dist, `.tmp-cli-${process.pid}-1`);
    await mkdir(deadTmp);
    await mkdir(liveTmp);
    await writeFile(join(dist, ENTRY), '');
    await writeFile(join(dist, STAMP), 'old\n');

    const removed = await pruneBuilds(dist, inUse, 2);

    expect(removed.sort()).toEqual([second, third, unstamped, deadTmp].sort());
    expect((await readdir(dist)).sort()).toEqual([newest, inUse, liveTmp].map((d) => d.slice(dist.length + 1)).sort());
  });
});
