import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { aoArgs } from './cli-entry.js';

export { aoArgs, CLI } from './cli-entry.js';
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * How long a spawned `ao serve` or `ao node` may take to come up before it is killed and the test
 * fails. A safety net, not a budget: it waits on the process (its `/health`, its "running" line,
 * or its exit), and a start took 5-15 s through tsx on this 2-core machine when it was loaded (the
 * bundle is faster, but AO_GRAPHS still runs the sources through tsx), so a day three times
 * slower than that still fits with room to spare.
 */
export const PROCESS_START_MS = 180_000;

/**
 * The timeout of a test that runs `ao` processes one after another (a server, then CLI commands):
 * each costs seconds on a loaded machine, so vitest's default 60 s is what a slow day hit (`ao CLI
 * > replays a run from a step over HTTP`, eight processes, on 2026-12-05). A safety net far above
 * what such a test takes, never a measure of it: the test waits on each process's exit.
 */
export const PROCESS_TEST_MS = 300_000;

/** A free loopback port (bound, read, released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/**
 * Run the `ao` CLI to completion; resolves with its exit code and output. With `timeoutMs`, a
 * process still running then is SIGKILLed (its code is then null): a test never leaves one behind.
 */
export function runCli(
  args: string[],
  env: Record<string, string>,
  o: { timeoutMs?: number } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return aoArgs(env).then(
    (ao) =>
      new Promise((resolve) => {
        const p = spawn(process.execPath, [...ao, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        const timer = o.timeoutMs !== undefined ? setTimeout(() => p.kill('SIGKILL'), o.timeoutMs) : undefined;
        p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        p.on('exit', (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        });
      }),
  );
}

/** A real `ao serve` process on a free port; `kill9()` kills it without warning. */
export interface Server {
  url: string;
  proc: ChildProcess;
  kill9(): Promise<void>;
  stop(): Promise<void>;
  /** Resolves when the process exits by itself (e.g. fault injection); rejects after `ms`. */
  exited(ms: number): Promise<void>;
}

// Spawned processes log at warn: no access log, but the runtime's warnings and errors (a lost lease,
// a node id taken over) are in `log()` for tests to look for and for a failing test to print.
export async function startServer(env: Record<string, string>, args: string[] = []): Promise<Server> {
  // A free port is free when it is read, not when the child binds it: another test's server may
  // take it meanwhile. Then this child fails to listen and another server answers on that port, so
  // a server is ours only once its own output says it listens; a child that could not bind is
  // started again on another port.
  for (let attempt = 1; ; attempt++) {
    const started = await startServerOnce(env, args);
    if (started !== 'port taken') return started;
    if (attempt >= 5) throw new Error('ao serve found its port taken 5 times in a row');
  }
}

/** One try of {@link startServer}, on `port` (a free one by default). */
export async function startServerOnce(env: Record<string, string>, args: string[], port?: number): Promise<Server | 'port taken'> {
  port ??= await freePort();
  const proc = spawn(process.execPath, [...(await aoArgs(env)), 'serve', ...args], {
    cwd: ROOT,
    env: { ...process.env, AO_LOG_LEVEL: 'warn', ...env, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  proc.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  // Two browser test files may start a server (and a Chromium) each at the same moment: see PROCESS_START_MS.
  const deadline = Date.now() + PROCESS_START_MS;
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  let gone = false;
  void exited.then(() => (gone = true));
  const listening = () => log.includes(`listening on http://localhost:${port}`) || log.includes(`listening on http://127.0.0.1:${port}`);
  for (;;) {
    if (gone && /EADDRINUSE/.test(log)) return 'port taken';
    if (gone && !env.AO_FAULT_KILL_AFTER_EVENTS) throw new Error(`ao serve exited ${proc.exitCode}: ${log}`);
    if (gone) break; // killed itself already (fault injection while recovering)
    try {
      if (listening() && (await fetch(`${url}/health`)).ok) break;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`ao serve did not come up: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    proc,
    kill9: async () => {
      if (!gone) proc.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (!gone) proc.kill('SIGTERM');
      await exited;
    },
    exited: (ms) =>
      Promise.race([exited, new Promise<void>((_, rej) => setTimeout(() => rej(new Error(`ao serve still running after ${ms} ms`)), ms).unref())]),
  };
}

/**
 * A real headless `ao node` process; resolves once it says it is running. `onOutput` sees its
 * output so far each time it writes (a test can act while it is still starting).
 */
export async function startNodeProcess(
  env: Record<string, string>,
  o: { onOutput?: (log: string) => void } = {},
): Promise<Omit<Server, 'url'> & { log: () => string }> {
  const proc = spawn(process.execPath, [...(await aoArgs(env)), 'node'], {
    cwd: ROOT,
    env: { ...process.env, AO_LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const take = (d: Buffer) => {
    log += d.toString();
    o.onOutput?.(log);
  };
  proc.stdout!.on('data', take);
  proc.stderr!.on('data', take);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  let gone = false;
  void exited.then(() => (gone = true));
  // Two browser test files may start a server (and a Chromium) each at the same moment: see PROCESS_START_MS.
  const deadline = Date.now() + PROCESS_START_MS;
  while (!/node \S+ running/.test(log)) {
    if (gone) throw new Error(`ao node exited ${proc.exitCode}: ${log}`);
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`ao node did not come up: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    proc,
    log: () => log,
    kill9: async () => {
      if (!gone) proc.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (!gone) proc.kill('SIGTERM');
      await exited;
    },
    exited: (ms) => Promise.race([exited, new Promise<void>((_, rej) => setTimeout(() => rej(new Error(`ao node still running after ${ms} ms`)), ms).unref())]),
  };
}

/** Debian's nats-server binary (apt-get install nats-server), for tests that run a private one. */
export const NATS_SERVER = '/usr/sbin/nats-server';

/** Whether the NATS_SERVER binary is here; under CI a missing one throws instead of skipping. */
export function natsServerInstalled(): boolean {
  if (existsSync(NATS_SERVER)) return true;
  if (process.env.CI) throw new Error(`CI is set and ${NATS_SERVER} is missing: install it with apt-get install -y nats-server`);
  console.warn(`[tests] ${NATS_SERVER} missing: the suites that run a private NATS server are skipped (they run under CI)`);
  return false;
}

/** A private nats-server with JetStream on a free port and its own store, restartable in place. */
export async function natsServer(storeDir: string): Promise<{ url: string; start: () => Promise<void>; stop: () => Promise<void> }> {
  const port = await freePort();
  let proc: ChildProcess | undefined;
  const url = `nats://127.0.0.1:${port}`;
  const start = async () => {
    proc = spawn(NATS_SERVER, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], { stdio: 'ignore' });
    const end = Date.now() + 10_000;
    for (;;) {
      try {
        const { natsUnreachable } = await import('@ao/runtime/testing');
        if ((await natsUnreachable(url)) === undefined) return;
      } catch {
        /* not yet */
      }
      if (Date.now() > end) throw new Error('nats-server did not start');
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = async () => {
    const p = proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    await gone;
  };
  return { url, start, stop };
}
