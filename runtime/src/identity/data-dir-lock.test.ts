import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { isAoError } from '@ao/graphs';
import type { AoError } from '@ao/graphs';
import { DataDirLock, LOCK_FILE } from './data-dir-lock.js';
import { thisProcess } from './identity.js';

const MODULE = fileURLToPath(new URL('./data-dir-lock.ts', import.meta.url));
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'ao-lock-'));
  dirs.push(d);
  return d;
}

/** The pid of a process that has exited (and been reaped): provably not running. */
async function deadPid(): Promise<number> {
  const p = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((r) => p.once('exit', r));
  return p.pid!;
}

async function refusal(p: Promise<unknown>): Promise<AoError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!isAoError(e)) throw new Error(`expected an AoError, got ${String(e)}`);
  return e;
}

const self = thisProcess();
const holder = (o: Record<string, unknown>) =>
  JSON.stringify({ token: 'old-token', host: self.host, pidNs: self.pidNs, pid: 4242, command: 'ao serve', startedAt: '2026-01-01T00:00:00.000Z', ...o });

describe('DataDirLock', () => {
  it('holds a directory for one owner: a second taker is refused with AO_DATA_DIR_LOCKED naming it, and takes it once released', async () => {
    const dir = await tmp();
    const lock = await DataDirLock.acquire({ dir, command: 'ao serve' });
    const written = JSON.parse(await readFile(join(dir, LOCK_FILE), 'utf8')) as Record<string, unknown>;
    expect(written).toMatchObject({ pid: process.pid, host: hostname(), command: 'ao serve' });
    expect(await DataDirLock.inspect(dir)).toMatchObject({ state: 'alive', holder: { pid: process.pid } });
    await lock.publishUrl('http://127.0.0.1:4600');
    expect((await DataDirLock.inspect(dir))?.holder?.url).toBe('http://127.0.0.1:4600');
    const e = await refusal(DataDirLock.acquire({ dir, command: 'ao run' }));
    expect(e.code).toBe('AO_DATA_DIR_LOCKED');
    expect(e.field).toBe('AO_DATA_DIR');
    expect(e.message).toContain(`\`ao serve\` (pid ${process.pid} on host ${hostname()}`);
    expect(e.message).toContain('serving http://127.0.0.1:4600');
    expect(e.details).toMatchObject({ dir, pid: process.pid, host: hostname(), command: 'ao serve', url: 'http://127.0.0.1:4600' });
    await lock.release();
    expect(await DataDirLock.inspect(dir)).toBeUndefined();
    const next = await DataDirLock.acquire({ dir, command: 'ao run' });
    await next.release();
    expect(await readdir(dir)).toEqual([]);
  });

  it('refuses a lock whose holder runs on this host', async () => {
    const dir = await tmp();
    await writeFile(join(dir, LOCK_FILE), holder({ pid: 4242 }));
    const e = await refusal(DataDirLock.acquire({ dir, command: 'ao node', isRunning: () => true, startOf: () => undefined }));
    expect(e.details).toMatchObject({ pid: 4242, command: 'ao serve' });
  });

  it('takes a stale lock at once: its pid is not running (SIGKILL), or runs with another start time (a reused pid), or is ours but not held here (a container restarted as pid 1)', async () => {
    for (const stale of [{ pid: await deadPid() }, { pid: process.pid, procStart: 'other' }, { pid: process.pid }]) {
      const dir = await tmp();
      await writeFile(join(dir, LOCK_FILE), holder(stale));
      const logs: string[] = [];
      const lock = await DataDirLock.acquire({ dir, command: 'ao serve', log: (m) => logs.push(m) });
      expect(logs.join('\n')).toContain('a process that is gone');
      expect((await DataDirLock.inspect(dir))?.holder?.token).toBe(lock.self.token);
      expect((await readdir(dir)).sort()).toEqual([LOCK_FILE]);
      await lock.release();
    }
    const reused = await tmp();
    await writeFile(join(reused, LOCK_FILE), holder({ pid: 4242, procStart: '100' }));
    const lock = await DataDirLock.acquire({ dir: reused, command: 'ao serve', isRunning: () => true, startOf: () => '200' });
    await lock.release();
  });

  it('watches a holder on another host: refused once it touches the lock, taken once it stays silent past the stale time, at once if it already has', async () => {
    const elsewhere = { host: 'another-host', pidNs: 'pid:[9]', pid: 77 };
    const dir = await tmp();
    await writeFile(join(dir, LOCK_FILE), holder(elsewhere));
    const beating = setInterval(() => {
      const t = new Date(Date.now() + Math.floor(Math.random() * 1000));
      void utimes(join(dir, LOCK_FILE), t, t).catch(() => undefined);
    }, 50);
    try {
      const e = await refusal(DataDirLock.acquire({ dir, command: 'ao serve', staleMs: 60_000 }));
      expect(e.details).toMatchObject({ host: 'another-host', pid: 77 });
    } finally {
      clearInterval(beating);
    }
    const logs: string[] = [];
    const lock = await DataDirLock.acquire({ dir, command: 'ao serve', staleMs: 300, log: (m) => logs.push(m) });
    expect(logs.join('\n')).toContain('waiting for it to touch the lock');
    await lock.release();
    const old = await tmp();
    await writeFile(join(old, LOCK_FILE), holder(elsewhere));
    await utimes(join(old, LOCK_FILE), new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    const logs2: string[] = [];
    const taken = await DataDirLock.acquire({ dir: old, command: 'ao serve', log: (m) => logs2.push(m) });
    expect(logs2.join('\n')).not.toContain('waiting');
    await taken.release();
  });

  it('takes an unreadable lock (cut short by a power loss) once it has not changed for the stale time', async () => {
    const dir = await tmp();
    await writeFile(join(dir, LOCK_FILE), '');
    const lock = await DataDirLock.acquire({ dir, command: 'ao serve', staleMs: 200 });
    expect((await DataDirLock.inspect(dir))?.state).toBe('alive');
    await lock.release();
  });

  it('lets exactly one of several processes starting at once take the directory, free or held by a dead process', async () => {
    for (const stale of [false, true]) {
      const dir = await tmp();
      if (stale) await writeFile(join(dir, LOCK_FILE), holder({ pid: await deadPid() }));
      // Each child says it is ready, tries when told, says how it went, and holds what it took until its stdin closes.
      const script = `const { DataDirLock } = await import(${JSON.stringify(MODULE)});
console.log('ready');
await new Promise((r) => process.stdin.once('data', r));
try { await DataDirLock.acquire({ dir: ${JSON.stringify(dir)}, command: 'ao serve' }); console.log('took'); }
catch (e) { console.log(e.code ?? String(e)); }
process.stdin.resume(); process.stdin.on('end', () => process.exit(0));`;
      const children = Array.from({ length: 6 }, () =>
        spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['pipe', 'pipe', 'inherit'] }),
      );
      try {
        // Lines each child has written so far.
        const lines = children.map((c) => {
          const got: string[] = [];
          let rest = '';
          c.stdout.on('data', (d: Buffer) => {
            const parts = (rest + d.toString()).split('\n');
            rest = parts.pop()!;
            got.push(...parts.map((l) => l.trim()));
          });
          return got;
        });
        const until = async (ok: () => boolean) => {
          while (!ok()) {
            if (children.some((c) => c.exitCode !== null)) throw new Error(`a child exited: ${JSON.stringify(lines)}`);
            await new Promise((r) => setTimeout(r, 20));
          }
        };
        await until(() => lines.every((l) => l.includes('ready')));
        for (const c of children) c.stdin.write('go\n');
        await until(() => lines.every((l) => l.length >= 2));
        const said = lines.map((l) => l[1]!);
        expect(said.filter((s) => s === 'took').length, said.join(', ')).toBe(1);
        expect(said.filter((s) => s === 'AO_DATA_DIR_LOCKED').length, said.join(', ')).toBe(5);
      } finally {
        await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r(undefined) : (c.once('exit', r), c.stdin.end())))));
      }
    }
  }, 120_000);
});

describe('DataDirLock, many takers in one event loop (every await interleaved)', () => {
  it('lets exactly one of twelve take a stale lock; the others are refused naming the winner', async () => {
    for (let trial = 0; trial < 5; trial++) {
      const dir = await tmp();
      await writeFile(join(dir, LOCK_FILE), holder({ pid: 999_999 }));
      const live = new Set(Array.from({ length: 12 }, (_, i) => 1000 + i));
      const tries = [...live].map((pid) =>
        DataDirLock.acquire({ dir, command: `taker ${pid}`, self: { ...self, pid }, isRunning: (p) => live.has(p), startOf: () => undefined }).then(
          (l) => ({ took: l }),
          (e: unknown) => ({ refused: e as AoError }),
        ),
      );
      const results = await Promise.all(tries);
      const winners = results.flatMap((r) => ('took' in r ? [r.took] : []));
      expect(winners.length).toBe(1);
      const winner = winners[0]!;
      for (const r of results) if ('refused' in r) expect(r.refused.details).toMatchObject({ pid: winner.self.pid });
      expect((await DataDirLock.inspect(dir, { self: { ...self, pid: 1 }, isRunning: (p) => live.has(p), startOf: () => undefined }))?.holder?.token).toBe(
        winner.self.token,
      );
      await winner.release();
    }
  });
});
