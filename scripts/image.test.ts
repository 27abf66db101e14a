import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, dropNatsPrefix, natsAvailable, natsPrefix, postgresAvailable, TEST_NATS_URL } from '@ao/runtime/testing';
import { freePort } from '../gateway/test/process.js';

const ROOT = join(import.meta.dirname, '..');
const run = promisify(execFile);
const up = (await postgresAvailable()) && (await natsAvailable());

/** The Dockerfile's final stage: its ENTRYPOINT, ENV, and what its `COPY --from=build` lines take. */
export function finalStage(dockerfile: string): {
  entrypoint: string[];
  env: Record<string, string>;
  copies: Array<{ from: string; to: string }>;
  buildRuns: string[];
} {
  const stages = dockerfile.split(/^FROM /m).slice(1);
  const last = stages.at(-1)!;
  const build = stages.slice(0, -1).join('\n');
  const entry = /^ENTRYPOINT (\[.*\])$/m.exec(last);
  if (!entry) throw new Error('no ENTRYPOINT in the final stage');
  const env: Record<string, string> = {};
  for (const m of last.matchAll(/^ENV (.+)$/gm)) for (const kv of m[1]!.split(/\s+/)) env[kv.split('=')[0]!] = kv.split('=').slice(1).join('=');
  const copies = [...last.matchAll(/^COPY --from=build \/app\/(\S+) (\S+)$/gm)].map((m) => ({ from: m[1]!, to: m[2]! }));
  const buildRuns = [...build.matchAll(/^RUN (node scripts\/\S+)$/gm)].map((m) => m[1]!);
  return { entrypoint: JSON.parse(entry[1]!) as string[], env, copies, buildRuns };
}

/** A compose service's `command` (written as a JSON array) and the shared `environment` of the x-ao block. */
export function composeService(compose: string, name: string): { command: string[]; env: Record<string, string> } {
  const block = new RegExp(`^  ${name}:\\n((?:    .*\\n|\\s*\\n)+)`, 'm').exec(compose);
  const cmd = block && /^\s+command: (\[.*\])$/m.exec(block[1]!);
  if (!cmd) throw new Error(`no command for service ${name}`);
  const x = /^x-ao:.*\n((?: {2}.*\n)+)/m.exec(compose)![1]!;
  const envBlock = /^ {2}environment:\n((?: {4}.*\n)+)/m.exec(x)![1]!;
  const env = Object.fromEntries([...envBlock.matchAll(/^ {4}(\w+): (.*)$/gm)].map((m) => [m[1]!, m[2]!.trim()]));
  return { command: JSON.parse(cmd[1]!) as string[], env };
}

// The image's commands, outside Docker (no engine here): its build step, the files its final
// stage copies (node_modules linked, not copied: 400 MB), and the gateway's and node's commands from
// docker-compose.yml, with the compose network's addresses replaced by this machine's services.
describe.skipIf(!up)('the image and docker compose, run without Docker', () => {
  const prefix = natsPrefix('img');
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let root: string;
  let stage: ReturnType<typeof finalStage>;
  let compose: string;
  const procs: ChildProcess[] = [];
  const logs: string[] = [];

  beforeAll(async () => {
    stage = finalStage(await readFile(join(ROOT, 'Dockerfile'), 'utf8'));
    compose = await readFile(join(ROOT, 'docker-compose.yml'), 'utf8');
    // The build stage's own step (the inspector's vite build left out: slow here, and optional at run time).
    expect(stage.buildRuns).toEqual(['node scripts/build-image.mjs']);
    await run(process.execPath, ['scripts/build-image.mjs', '--no-inspector'], { cwd: ROOT });
    root = await mkdtemp(join(tmpdir(), 'ao-image-'));
    for (const c of stage.copies) {
      const src = join(ROOT, c.from);
      const dst = join(root, c.to);
      await mkdir(dirname(dst), { recursive: true });
      if (c.from === 'node_modules') await symlink(src, dst, 'dir');
      else if (existsSync(src)) await cp(src, dst, { recursive: true });
      else expect(c.from, 'only the inspector build may be missing here').toBe('inspector/build');
    }
    db = await createTestDatabase();
  }, 180_000);

  afterAll(async () => {
    for (const p of procs) if (p.exitCode === null) p.kill('SIGTERM');
    await Promise.all(procs.map((p) => (p.exitCode === null ? new Promise((r) => p.once('exit', r)) : undefined)));
    await db?.drop();
    await dropNatsPrefix(prefix);
    if (root) await rm(root, { recursive: true, force: true });
  });

  const start = async (service: string, port?: number): Promise<ChildProcess> => {
    const { command, env } = composeService(compose, service);
    // In compose every container has its own /tmp: each process here gets its own data dir.
    const dataDir = await mkdtemp(join(tmpdir(), `ao-image-${service}-`));
    const args = [...stage.entrypoint.slice(1), ...command];
    if (port !== undefined) args[args.indexOf('--port') + 1] = String(port);
    expect(stage.entrypoint[0]).toBe('node');
    const p = spawn(process.execPath, args, {
      cwd: root,
      env: {
        PATH: process.env.PATH,
        ...stage.env,
        ...env,
        AO_DATA_DIR: dataDir,
        DATABASE_URL: db.url,
        NATS_URL: TEST_NATS_URL,
        OTEL_EXPORTER_OTLP_ENDPOINT: '',
        AO_NATS_PREFIX: prefix,
        AO_LLM_LATENCY_MS: '20',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const i = logs.push('') - 1;
    p.stdout!.on('data', (d: Buffer) => (logs[i] += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (logs[i] += d.toString()));
    procs.push(p);
    return p;
  };

  it('the gateway command and three node commands make a cluster that runs runs (docker compose up --scale node=3)', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    await start('gateway', port);
    for (let i = 0; i < 3; i++) await start('node');
    const get = async <T>(path: string): Promise<T> => (await (await fetch(`${url}${path}`)).json()) as T;
    const until = async <T>(probe: () => Promise<T | undefined>, what: string, ms = 120_000): Promise<T> => {
      const end = Date.now() + ms;
      for (;;) {
        const v = await probe().catch(() => undefined);
        if (v !== undefined) return v;
        if (Date.now() > end || procs.some((p) => p.exitCode !== null)) throw new Error(`${what}: not so after ${ms} ms\n${logs.join('\n---\n').slice(-4000)}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    };
    const health = await until(async () => get<{ status: string; role: string }>('/health'), 'the gateway answers /health');
    expect(health).toMatchObject({ status: 'ok', role: 'gateway' });
    await until(async () => ((await get<{ nodes: unknown[] }>('/nodes')).nodes.length === 3 ? true : undefined), 'three nodes in /nodes');
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${url}/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ graph: 'research-swarm', input: { topic: `image ${i}` } }),
      });
      expect(res.status).toBe(202);
      ids.push(((await res.json()) as { id: string }).id);
    }
    for (const id of ids) {
      const status = await until(async () => {
        const r = await get<{ status: string }>(`/runs/${id}`);
        return ['succeeded', 'failed', 'cancelled', 'budget_exceeded'].includes(r.status) ? r.status : undefined;
      }, `run ${id} ends`);
      expect(status).toBe('succeeded');
    }
    const nodes = (await get<{ nodes: Array<{ id: string; runsHosted: number }> }>('/nodes')).nodes;
    expect(new Set(nodes.map((n) => n.id)).size).toBe(3);
  }, 240_000);
});
