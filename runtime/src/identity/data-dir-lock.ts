import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { AoError } from '@ao/graphs';
import { isoNow, systemClock } from '../clock/mod.js';
import { pidRunning, thisProcess } from './identity.js';
import type { ProcessRef } from './identity.js';

/** The lock's file in a data directory. */
export const LOCK_FILE = 'ao.lock';

/** What the lock file says about its holder (written whole, never edited in place). */
const HolderSchema = z.object({
  token: z.string().min(1),
  pid: z.number().int().positive(),
  host: z.string(),
  pidNs: z.string(),
  /** Linux: the process's start time (`/proc/<pid>/stat` field 22), so a reused pid is not mistaken for the holder. */
  procStart: z.string().optional(),
  command: z.string(),
  startedAt: z.string(),
  /** `ao serve`: where its HTTP API answers, once it listens. */
  url: z.string().optional(),
});
export type DataDirHolder = z.infer<typeof HolderSchema>;

/** alive: it holds the directory; gone: it is provably dead (the lock is stale); unknown: another host, whose heartbeat is recent. */
export type HolderState = 'alive' | 'gone' | 'unknown';

/** A holder on another host (or pid namespace) touches the lock this often... */
export const LOCK_BEAT_MS = 2_000;
/** ...and counts as dead after this long without a touch. */
export const LOCK_STALE_MS = 15_000;

/** Tokens this process holds: a lock with our own pid is ours only if its token is here (else a predecessor's, e.g. a container's pid 1). */
const held = new Set<string>();

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const code = (e: unknown) => (e as NodeJS.ErrnoException).code;

/** Linux: a process's start time in clock ticks since boot, or undefined (no such pid, not Linux). */
function procStart(pid: number): string | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from after the last ')'.
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** AO_DATA_DIR_LOCKED, naming the process that holds the directory (and its HTTP address, if it has one). */
export function dataDirLocked(dir: string, h: DataDirHolder | undefined, extra = ''): AoError {
  const who = h ? `\`${h.command}\` (pid ${h.pid} on host ${h.host}, started ${h.startedAt}${h.url ? `, serving ${h.url}` : ''})` : 'another process';
  const hint = h?.url ? `talk to it (AO_URL=${h.url}), or stop it first` : 'stop it first, or use another AO_DATA_DIR';
  return new AoError('AO_DATA_DIR_LOCKED', `the data directory ${dir} is in use by ${who}: one process at a time may open an embedded store; ${hint}${extra}`, {
    field: 'AO_DATA_DIR',
    details: { dir, ...(h ? { pid: h.pid, host: h.host, command: h.command, startedAt: h.startedAt, ...(h.url ? { url: h.url } : {}) } : {}) },
  });
}

interface Seen {
  holder: DataDirHolder | undefined;
  /** The holder's token, or (an unreadable file) a name for this very file, to tell it from a later one. */
  key: string;
  mtimeMs: number;
}

async function readLock(file: string): Promise<Seen | undefined> {
  let text: string;
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(file);
    text = await readFile(file, 'utf8');
  } catch (e) {
    if (code(e) === 'ENOENT') return undefined;
    throw e;
  }
  let holder: DataDirHolder | undefined;
  try {
    holder = HolderSchema.parse(JSON.parse(text));
  } catch {
    holder = undefined; // cut short by a power loss, or not ours: stale once it stops changing
  }
  return { holder, key: holder?.token ?? `unreadable-${st.ino}-${st.size}`, mtimeMs: st.mtimeMs };
}

export interface DataDirLockOptions {
  /** The data directory (AO_DATA_DIR). */
  dir: string;
  /** Who takes it, as the refusal names it (`ao serve`, `ao node`, `ao run`, ...). */
  command: string;
  /** Told while it waits on a holder on another host. */
  log?: (message: string) => void;
  /** For tests: who this process is, whether a pid runs here, and a holder's start time. */
  self?: ProcessRef;
  isRunning?: (pid: number) => boolean;
  startOf?: (pid: number) => string | undefined;
  staleMs?: number;
}

/**
 * The one owner of an embedded data directory. PGlite takes no lock, and two processes on one
 * data dir each run their own copy of the database over its files, so what one writes the other
 * never sees (and may overwrite): the directory is locked before the store is opened.
 *
 * The lock is the file `ao.lock`, created whole (written under another name, then linked into
 * place: `link` fails if it exists) and holding its holder as JSON. It outlives a SIGKILL, but a
 * dead holder never blocks anyone: on this host (same host name and pid namespace) a holder whose
 * pid is not running, or runs with another start time (a reused pid), is gone, at once; a holder
 * elsewhere (a container with another host name, a shared disk) touches the file every 2 s and is
 * gone once it has not for 15 s. A stale lock is replaced by exactly one successor: each
 * candidate must first create `ao.lock.after-<dead holder's token>` (again with `link`), then
 * check the lock is still the dead one, then rename its own over it.
 *
 * @example
 * const lock = await DataDirLock.acquire({ dir: config.AO_DATA_DIR, command: 'ao serve' });
 * // ... open PGlite under the directory, listen, then:
 * await lock.publishUrl('http://127.0.0.1:4000');
 * await lock.release();
 */
export class DataDirLock {
  private released = false;
  private beat: NodeJS.Timeout | undefined;

  private constructor(
    readonly dir: string,
    private holder: DataDirHolder,
    private handle: FileHandle | undefined,
  ) {
    this.startBeat();
  }

  /** Who holds the lock now, if anyone, and whether that process is provably alive or gone. Never takes it. */
  static async inspect(
    dir: string,
    o: Pick<DataDirLockOptions, 'self' | 'isRunning' | 'startOf' | 'staleMs'> = {},
  ): Promise<{ holder: DataDirHolder | undefined; state: HolderState } | undefined> {
    const seen = await readLock(join(dir, LOCK_FILE));
    if (!seen) return undefined;
    return { holder: seen.holder, state: judge(seen, o) };
  }

  /**
   * Take the directory, or fail with AO_DATA_DIR_LOCKED naming the live holder. A holder on this
   * host is judged at once; one elsewhere is watched until it touches the lock (alive: refused) or
   * has not for `LOCK_STALE_MS` (gone: taken).
   */
  static async acquire(o: DataDirLockOptions): Promise<DataDirLock> {
    const self = o.self ?? thisProcess();
    const staleMs = o.staleMs ?? LOCK_STALE_MS;
    await mkdir(o.dir, { recursive: true });
    const file = join(o.dir, LOCK_FILE);
    const start = o.self ? undefined : procStart(self.pid);
    const me: DataDirHolder = { token: randomUUID(), ...self, ...(start !== undefined ? { procStart: start } : {}), command: o.command, startedAt: isoNow() };
    const tmp = await writeTemp(file, me);
    // Held from before the lock can name it: another taker in this process must never judge our
    // pid without our token alive for a moment (it would take the lock from us).
    held.add(me.token);
    let took = false;
    try {
      let watching: { key: string; mtimeMs: number; until: number } | undefined;
      let raced = 0;
      for (;;) {
        if (await tryLink(tmp, file)) {
          took = true;
          return await DataDirLock.taken(o.dir, me, file);
        }
        const seen = await readLock(file);
        if (!seen) continue; // let go between the two calls
        let state = judge(seen, { ...o, staleMs });
        if (state === 'unknown') {
          // Another host's holder: alive if it touches the lock while we watch, gone if it stays silent.
          // Wall time throughout (the system clock): it is compared with the lock file's mtime.
          if (!watching || watching.key !== seen.key) {
            watching = {
              key: seen.key,
              mtimeMs: seen.mtimeMs,
              until: systemClock.now() + Math.max(0, staleMs - Math.max(0, systemClock.now() - seen.mtimeMs)),
            };
            o.log?.(
              `the data directory ${o.dir} is held by ${seen.holder ? `\`${seen.holder.command}\` (pid ${seen.holder.pid} on host ${seen.holder.host})` : 'an unreadable lock'}; waiting for it to touch the lock (then this process stops) or to stay silent ${Math.ceil((watching.until - systemClock.now()) / 1000)} s more (then it takes the directory)`,
            );
          } else if (seen.mtimeMs !== watching.mtimeMs) {
            state = 'alive';
          } else if (systemClock.now() >= watching.until) {
            state = 'gone';
          }
          if (state === 'unknown') {
            await sleep(Math.min(250, Math.max(20, watching.until - systemClock.now())));
            continue;
          }
        }
        if (state === 'alive') throw dataDirLocked(o.dir, seen.holder);
        if (await succeed(file, tmp, seen, o, staleMs)) {
          took = true;
          o.log?.(
            `the data directory ${o.dir} was held by ${seen.holder ? `pid ${seen.holder.pid} on host ${seen.holder.host}` : 'an unreadable lock'}, a process that is gone; this process took it`,
          );
          return await DataDirLock.taken(o.dir, me, file);
        }
        // Another process is replacing the same stale lock: look again once it has.
        if (++raced > 200) throw dataDirLocked(o.dir, seen.holder, ' (its stale lock is being replaced by another process)');
        await sleep(25);
      }
    } finally {
      if (!took) held.delete(me.token);
      await unlink(tmp).catch(() => undefined);
    }
  }

  private static async taken(dir: string, me: DataDirHolder, file: string): Promise<DataDirLock> {
    // Left by successions and by processes killed while taking the lock; none is needed now
    // (a successor that finds its marker gone checks the lock first and sees ours).
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (name.startsWith(`${LOCK_FILE}.after-`)) await unlink(join(dir, name)).catch(() => undefined);
      else if (name.startsWith(`${LOCK_FILE}.`) && name.endsWith('.tmp')) {
        // Another process's name for its record while it takes the lock: only an old one is debris.
        const st = await stat(join(dir, name)).catch(() => undefined);
        if (st && systemClock.now() - st.mtimeMs > 60_000) await unlink(join(dir, name)).catch(() => undefined);
      }
    }
    const handle = await open(file, 'r').catch(() => undefined);
    return new DataDirLock(dir, me, handle);
  }

  /** This process's record in the lock. */
  get self(): DataDirHolder {
    return this.holder;
  }

  /** Say where this process's HTTP API answers: a CLI that finds the directory locked talks to it there. */
  async publishUrl(url: string): Promise<void> {
    if (this.released) return;
    const file = join(this.dir, LOCK_FILE);
    const next = { ...this.holder, url };
    const tmp = await writeTemp(file, next);
    const now = await readLock(file);
    if (now?.key !== this.holder.token) {
      await unlink(tmp).catch(() => undefined);
      return;
    }
    await rename(tmp, file);
    this.holder = next;
    const old = this.handle;
    this.handle = await open(file, 'r').catch(() => undefined);
    await old?.close().catch(() => undefined);
  }

  /** Let the directory go (after the store is closed). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.beat);
    held.delete(this.holder.token);
    const file = join(this.dir, LOCK_FILE);
    if ((await readLock(file).catch(() => undefined))?.key === this.holder.token) await unlink(file).catch(() => undefined);
    await this.handle?.close().catch(() => undefined);
  }

  private startBeat(): void {
    // Touch the file we hold (by its handle: a lock some other process put in its place is not
    // touched), so a process on another host can tell a live holder from a dead one.
    this.beat = setInterval(() => {
      const now = new Date(systemClock.now()); // wall time: the file's mtime, read by other hosts
      void this.handle?.utimes(now, now).catch(() => undefined);
    }, LOCK_BEAT_MS);
    this.beat.unref();
  }
}

function judge(seen: Seen, o: Pick<DataDirLockOptions, 'self' | 'isRunning' | 'startOf' | 'staleMs'>): HolderState {
  const h = seen.holder;
  const self = o.self ?? thisProcess();
  if (h && h.host === self.host && h.pidNs === self.pidNs) {
    if (h.pid === self.pid) return held.has(h.token) ? 'alive' : 'gone';
    if (!(o.isRunning ?? pidRunning)(h.pid)) return 'gone';
    const start = o.startOf ? o.startOf(h.pid) : procStart(h.pid);
    if (h.procStart !== undefined && start !== undefined && start !== h.procStart) return 'gone';
    return 'alive';
  }
  return systemClock.now() - seen.mtimeMs > (o.staleMs ?? LOCK_STALE_MS) ? 'gone' : 'unknown';
}

async function writeTemp(file: string, h: DataDirHolder): Promise<string> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, `${JSON.stringify(h)}\n`, { flag: 'wx' });
  return tmp;
}

/** Create `to` as another name of `from`, unless it exists. */
async function tryLink(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (e) {
    if (code(e) === 'EEXIST') return false;
    throw e;
  }
}

/**
 * Replace the stale lock `stale` with ours (`tmp`), unless another process replaces it first.
 * Exactly one candidate creates the marker `ao.lock.after-<stale key>`; a marker whose creator
 * died before finishing is itself succeeded the same way. The winner checks that the lock is
 * still the stale one (a successor that finished, released and let a new holder in must not be
 * overwritten) and renames a copy of its own over it.
 */
async function succeed(file: string, tmp: string, stale: Seen, o: DataDirLockOptions, staleMs: number): Promise<boolean> {
  let blocker = stale;
  for (let depth = 0; depth < 16; depth++) {
    const marker = `${file}.after-${blocker.key.replace(/[^A-Za-z0-9-]/g, '')}`;
    if (await tryLink(tmp, marker)) {
      try {
        if ((await readLock(file))?.key !== stale.key) return false;
        // A second name for our record, renamed over the lock (rename replaces atomically).
        const mine = tmp.replace(/\.tmp$/, '.next.tmp');
        await link(tmp, mine);
        await rename(mine, file);
        return true;
      } finally {
        await unlink(marker).catch(() => undefined);
      }
    }
    const next = await readLock(marker);
    if (!next) return false; // finished or given up meanwhile: look at the lock again
    if (judge(next, { ...o, staleMs }) !== 'gone') return false; // a live candidate is at it
    blocker = next;
  }
  return false;
}
