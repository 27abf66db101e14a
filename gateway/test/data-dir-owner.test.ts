import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { aoArgs, freePort, ROOT, runCli, startServer } from './process.js';
import type { Server } from './process.js';
import { json, waitAll } from './runs.js';

const readLock = async (dir: string) => JSON.parse(await readFile(join(dir, 'ao.lock'), 'utf8')) as Record<string, unknown>;

/** The lock once the server has published its address in it (just after it starts listening). */
async function publishedLock(dir: string, server: Server): Promise<Record<string, unknown>> {
  const end = Date.now() + 60_000;
  for (;;) {
    const lock = await readLock(dir);
    if (lock.pid === server.proc.pid && lock.url) return lock;
    if (Date.now() > end) throw new Error(`the lock never named the server's address: ${JSON.stringify(lock)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * One process per embedded data directory (issue 24), with real processes. The bug: a server on
 * PORT=4600, and `ao run` in another shell found nothing on :4000, opened .ao/pglite itself and
 * wrote a run there that the server never saw.
 */
describe('one owner per embedded data directory', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('the CLI on a held directory talks to its server whatever its port; a second ao serve is refused; after a SIGKILL a restart takes the directory at once and has the run', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ao-owner-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    let server: Server = await startServer({ AO_DATA_DIR: dir });
    cleanups.push(() => server.kill9());
    const lock = await publishedLock(dir, server);
    expect(lock).toMatchObject({ pid: server.proc.pid, host: hostname(), command: 'ao serve', url: server.url });

    // No server URL, and nothing on the CLI's default port: the lock leads it to the server.
    const cliEnv = { AO_DATA_DIR: dir, AO_URL: '', PORT: String(await freePort()) };
    const run = await runCli(['run', 'triage', '--input', '{"intent":"refund"}'], cliEnv, { timeoutMs: 120_000 });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toContain(`via ${server.url}`);
    const id = /run ([0-9a-f-]{36})/.exec(run.stdout)![1]!;
    const done = await waitAll(server.url, [id], 60_000);
    expect(done.get(id)!.status).toBe('succeeded');
    // The lock is still the server's: the CLI never took (nor opened) the directory.
    expect(await readLock(dir)).toEqual(lock);
    const runs = await runCli(['runs'], cliEnv, { timeoutMs: 120_000 });
    expect(runs.stdout).toMatch(new RegExp(`${id}\\s+triage\\s+succeeded`));

    // A second server, and anything else that would open the directory, is refused, naming the holder.
    const second = await runCli(['serve'], { AO_DATA_DIR: dir, PORT: String(await freePort()), AO_LOG_LEVEL: 'silent' }, { timeoutMs: 120_000 });
    expect(second.code, second.stdout + second.stderr).toBe(1);
    expect(second.stderr).toContain(
      `error AO_DATA_DIR_LOCKED: the data directory ${dir} is in use by \`ao serve\` (pid ${server.proc.pid} on host ${hostname()}`,
    );
    expect(second.stderr).toContain(`serving ${server.url}`);
    expect(second.stdout).not.toContain('listening');
    const keys = await runCli(['keys', 'list'], { AO_DATA_DIR: dir }, { timeoutMs: 120_000 });
    expect(keys.code).toBe(1);
    expect(keys.stderr).toContain('error AO_DATA_DIR_LOCKED');

    // SIGKILL: the lock stays behind, but its pid is gone, so a restart takes the directory at once.
    await server.kill9();
    expect(await readLock(dir)).toMatchObject({ pid: lock.pid });
    server = await startServer({ AO_DATA_DIR: dir });
    expect(await json<{ status: string }>(`${server.url}/runs/${id}`)).toMatchObject({ status: 'succeeded' });
    expect(await publishedLock(dir, server)).toMatchObject({ pid: server.proc.pid, url: server.url });

    // `ao show <id> | head -1`: the reader goes away; the CLI exits cleanly, no EPIPE stack.
    const ao = (await aoArgs(cliEnv)).map((a) => `"${a}"`).join(' ');
    const piped = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = spawn('bash', ['-c', `set -o pipefail; "${process.execPath}" ${ao} show ${id} --events | head -1`], {
        cwd: ROOT,
        env: { ...process.env, ...cliEnv },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('exit', (code) => resolve({ code, stdout, stderr }));
    });
    // (`ao show` prints a summary; its first line names the run.)
    expect(piped).toEqual({ code: 0, stdout: `run ${id}\n`, stderr: '' });
    // And a reader that is gone before the CLI writes anything: every write fails with EPIPE.
    const aoArgv = await aoArgs(cliEnv);
    const closed = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const p = spawn(process.execPath, [...aoArgv, 'show', id, '--events'], {
        cwd: ROOT,
        env: { ...process.env, ...cliEnv },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      p.stdout.destroy();
      let stderr = '';
      p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      p.on('exit', (code) => resolve({ code, stderr }));
    });
    expect(closed).toEqual({ code: 0, stderr: '' });

    await server.stop();
    // A graceful stop lets the directory go: no lock left behind.
    await expect(readFile(join(dir, 'ao.lock'), 'utf8')).rejects.toMatchObject({ code: 'ENOENT' });
  }, 300_000);
});
