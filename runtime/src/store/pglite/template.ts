import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  copyFileSync,
  existsSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { rename, rm, rmdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import { isoNow, systemClock } from '../../clock/clock.js';
import { pidRunning } from '../../identity/identity.js';
import { pgliteWasmModule } from './wasm.js';
import { tarTree, walk } from './tar.js';

/**
 * A new embedded data directory is a copy of a template: a data directory that PGlite's initdb
 * made and the migrations migrated once, kept in a cache directory and copied for every new one.
 * initdb inside WebAssembly takes seconds (2.3 s on a quiet 2-core machine); copying its result
 * (about 40 MB in 1,000 files) takes a tenth of that. The copy is the same bytes initdb and the
 * migrator would have written (same catalog, same `drizzle.__drizzle_migrations` rows: their
 * `created_at` is the journal's, not the clock's), so a directory made either way is the same
 * database, checked by `template.test.ts`.
 *
 * The template is keyed by everything that decides its bytes: PGlite's version (its initdb and
 * catalog), drizzle-orm's (its migrations table), the server settings it is opened with and a
 * hash of every file in the migrations folder. A template of any other key is never used: a
 * change to a migration makes a new one. It is built on first use, in a directory of its own
 * renamed into place whole, so two processes building it at once each build one and the first
 * rename stands; a process killed mid-build leaves a temporary directory that is never read.
 */

/** Bump when what a template holds, or how it is made, changes in a way the key does not see. */
const TEMPLATE_FORMAT = 1;
/** Templates kept in the cache (the current one included): other checkouts may use older ones. */
const KEEP_TEMPLATES = 4;
const TEMPLATES = 'pglite-templates';
const TMP_PREFIX = '.tmp-';
const STAMP = 'stamp.json';
const PGDATA = 'pgdata';

/**
 * Where the templates are kept unless told: `$XDG_CACHE_HOME/ao`, else `~/.cache/ao`. Nothing
 * there is committed or shipped: it is made on first use, on each machine, by whatever opens a
 * new data directory first.
 */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.AO_CACHE_DIR) return env.AO_CACHE_DIR;
  const base = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'ao');
}

export interface TemplateOptions {
  /** Server settings the database is opened with (PGlite's `postgresqlconf`). */
  conf: string;
  migrationsFolder: string;
  /** Where templates are kept; default {@link defaultCacheDir}. */
  cacheDir?: string;
}

/** The version in the package.json of the installed package `name` (found from its entry file). */
function installedVersion(name: string): string {
  const req = createRequire(import.meta.url);
  let dir = dirname(req.resolve(name));
  for (;;) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      if (pkg.name === name && pkg.version) return pkg.version;
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json of ${name} above ${req.resolve(name)}`);
    dir = up;
  }
}

/** The key of the template for these options: a hash of what decides the template's bytes. */
export function templateKey(o: Pick<TemplateOptions, 'conf' | 'migrationsFolder'>): string {
  const h = createHash('sha256');
  h.update(`format ${TEMPLATE_FORMAT}\0pglite ${installedVersion('@electric-sql/pglite')}\0drizzle-orm ${installedVersion('drizzle-orm')}\0conf ${o.conf}\0`);
  for (const f of walk(o.migrationsFolder).files) {
    const body = readFileSync(join(o.migrationsFolder, f));
    h.update(`${f}\0${body.length}\0`);
    h.update(body);
  }
  return h.digest('hex');
}

const errno = (e: unknown) => (e as NodeJS.ErrnoException).code;

/** A temporary name beside `path`, with this process's pid in it (see {@link removeStale}). */
const tmpName = (parent: string, prefix: string) => join(parent, `${prefix}${process.pid}-${randomBytes(4).toString('hex')}`);

/** Removes the temporary directories in `parent` (named `<prefix><pid>-…`) whose process is gone. */
function removeStale(parent: string, prefix: string): void {
  let names: string[];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const pid = Number(n.slice(prefix.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !pidRunning(pid)) rmSync(join(parent, n), { recursive: true, force: true });
  }
}

/** Files at least this large are copied block by block, leaving their zero blocks holes. */
const SPARSE_FROM = 1 << 20;
const BLOCK = 1 << 16;
const ZEROS = Buffer.alloc(BLOCK);

/**
 * Copies a file whose blocks of zeros are left unwritten (holes, which read as zeros): the same
 * bytes in fewer writes. A WAL segment is 16 MiB, about half of it zeros past its last record.
 * Read a block at a time into one buffer: a 16 MiB read of the whole file was memory the
 * allocator kept after it was freed (a first `ao serve` on a new directory held more at idle).
 */
function copySparse(from: string, to: string, mode: number): void {
  const size = statSync(from).size;
  const block = Buffer.allocUnsafe(BLOCK);
  const src = openSync(from, 'r');
  try {
    const fd = openSync(to, 'wx', mode);
    try {
      for (let at = 0; at < size; at += BLOCK) {
        let n = 0;
        while (n < Math.min(BLOCK, size - at)) {
          const got = readSync(src, block, n, Math.min(BLOCK, size - at) - n, at + n);
          if (got === 0) break;
          n += got;
        }
        if (!block.subarray(0, n).equals(ZEROS.subarray(0, n))) writeSync(fd, block, 0, n, at);
      }
      ftruncateSync(fd, size);
    } finally {
      closeSync(fd);
    }
  } finally {
    closeSync(src);
  }
}

/**
 * Copies the tree `from` to `to` (which must not exist): directories and files with their modes
 * (a copy-on-write clone where the file system has them). Synchronous: a thousand small files copy
 * in under a tenth of a second, without waiting for the thread pool that the rest of a starting
 * process also queues on.
 */
function copyTree(from: string, to: string): void {
  const { files, dirs } = walk(from);
  mkdirSync(to, { mode: statSync(from).mode & 0o7777 });
  for (const d of dirs) mkdirSync(join(to, d), { mode: statSync(join(from, d)).mode & 0o7777 });
  for (const f of files) {
    const src = join(from, f);
    const st = statSync(src);
    if (st.size >= SPARSE_FROM) copySparse(src, join(to, f), st.mode & 0o7777);
    else copyFileSync(src, join(to, f), constants.COPYFILE_FICLONE);
  }
}

interface Stamp {
  key: string;
  pglite: string;
  drizzleOrm: string;
  builtAt: string;
}

/** The template directory for `key` in `cacheDir`, if one is there whole and says it is for that key. */
function findTemplate(cacheDir: string, key: string): string | undefined {
  const dir = join(cacheDir, TEMPLATES, key.slice(0, 32));
  try {
    const stamp = JSON.parse(readFileSync(join(dir, STAMP), 'utf8')) as Partial<Stamp>;
    if (stamp.key !== key || !existsSync(join(dir, PGDATA, 'PG_VERSION'))) return undefined;
    return dir;
  } catch {
    return undefined;
  }
}

/**
 * Build the template for `key`: initdb and the migrations in a temporary directory of the cache,
 * closed cleanly (a checkpoint: the copy needs no recovery), stamped, then renamed into place.
 * Another process that renamed its own first wins: ours is dropped, theirs is the same database.
 */
async function buildTemplate(cacheDir: string, key: string, o: TemplateOptions): Promise<string> {
  const parent = join(cacheDir, TEMPLATES);
  mkdirSync(parent, { recursive: true });
  removeStale(parent, TMP_PREFIX);
  const tmp = tmpName(parent, TMP_PREFIX);
  const final = join(parent, key.slice(0, 32));
  try {
    mkdirSync(tmp);
    const wasm = await pgliteWasmModule();
    const client = new PGlite(join(tmp, PGDATA), { postgresqlconf: o.conf, ...(wasm ? { pgliteWasmModule: wasm } : {}) });
    try {
      await client.waitReady;
      await migrate(drizzle({ client }), { migrationsFolder: o.migrationsFolder });
    } finally {
      await client.close();
    }
    const stamp: Stamp = { key, pglite: installedVersion('@electric-sql/pglite'), drizzleOrm: installedVersion('drizzle-orm'), builtAt: isoNow() };
    writeFileSync(join(tmp, STAMP), `${JSON.stringify(stamp, null, 2)}\n`);
    for (let attempt = 0; ; attempt++) {
      try {
        await rename(tmp, final);
        break;
      } catch (e) {
        if ((errno(e) !== 'ENOTEMPTY' && errno(e) !== 'EEXIST') || attempt >= 2) throw e;
        // Another process renamed the same template into place first: theirs stands. What is
        // there without a stamp for this key is no template of ours (a cache edited by hand): replaced.
        if (findTemplate(cacheDir, key)) break;
        await rm(final, { recursive: true, force: true });
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  pruneTemplates(parent, final);
  return final;
}

/** Keeps the newest {@link KEEP_TEMPLATES} templates (by last use), `current` always among them. Best effort. */
function pruneTemplates(parent: string, current: string): void {
  try {
    const all = readdirSync(parent, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith(TMP_PREFIX) && join(parent, e.name) !== current)
      .map((e) => {
        const dir = join(parent, e.name);
        let used = 0;
        try {
          used = statSync(join(dir, STAMP)).mtimeMs;
        } catch {
          // A template without a stamp is half of one: first to go.
        }
        return { dir, used };
      })
      .sort((a, b) => b.used - a.used);
    for (const t of all.slice(KEEP_TEMPLATES - 1)) rmSync(t.dir, { recursive: true, force: true });
  } catch {
    // Pruning is housekeeping: a template another process removed first, or a cache not ours to clean.
  }
}

/** The template for these options, built if the cache has none; returns its directory (the data is in `pgdata/`). */
export async function ensureTemplate(o: TemplateOptions): Promise<{ dir: string; built: boolean }> {
  const cacheDir = o.cacheDir ?? defaultCacheDir();
  const key = templateKey(o);
  const found = findTemplate(cacheDir, key);
  if (found) return { dir: found, built: false };
  return { dir: await buildTemplate(cacheDir, key, o), built: true };
}

/** Tarballs of templates read by this process, by template directory: read once, loaded by every in-memory store. */
const tarballs = new Map<string, Uint8Array>();

/**
 * The template as a tarball, for an in-memory PGlite (its `loadDataDir` option): the store a test
 * opens without a data directory starts from the template's files, as a new data directory does,
 * instead of running initdb (about 2 s each). Read from the cached template (the template built
 * first if the cache has none) once per process and kept (about 40 MB, uncompressed: PGlite
 * unpacks it into its in-memory file system).
 *
 * What PGlite is handed is not a `Blob` but an object with the two members it reads (`type`,
 * `arrayBuffer()`): Node 20's `Blob.arrayBuffer()` of 40 MB took about a second of CPU (it
 * reads the blob as a stream and concatenates), more than the rest of the load.
 */
export async function templateTarball(o: TemplateOptions): Promise<{ tarball: Blob; built: boolean }> {
  const template = await ensureTemplate(o);
  let bytes = tarballs.get(template.dir);
  if (!bytes) {
    bytes = tarTree(join(template.dir, PGDATA));
    tarballs.set(template.dir, bytes);
    touch(join(template.dir, STAMP));
  }
  const body = bytes;
  const tarball = {
    type: 'application/x-tar',
    size: body.length,
    // A copy each time: PGlite's untar only reads it, but what it is handed is its own.
    arrayBuffer: () => Promise.resolve(body.slice().buffer),
  };
  return { tarball: tarball as unknown as Blob, built: template.built };
}

/** How {@link prepareDataDir} found or made a data directory. */
export type DataDirSource =
  /** It held a database already (or files PGlite is left to deal with). */
  | 'existing'
  /** Copied from the cached template. */
  | 'template'
  /** Copied from a template this call built (the cache had none for the current key). */
  | 'new-template'
  /** The template could not be used (see `error`): PGlite's initdb and the migrator make it, as without a template. */
  | 'initdb';

/**
 * Makes `dataDir` a migrated database from the template when it is new (missing or empty):
 * copied under a temporary name beside it and renamed into place, so a process killed mid-copy
 * leaves no half database under the real name (its leftover is removed by the next call). A
 * directory that already holds files is left as it is. If no template can be had (a cache that
 * cannot be written, say), the directory is left new and PGlite makes it as it always did.
 * Callers hold the data directory (`DataDirLock`): one process at a time makes it.
 */
export async function prepareDataDir(dataDir: string, o: TemplateOptions): Promise<{ source: DataDirSource; error?: unknown }> {
  if (existsSync(join(dataDir, 'PG_VERSION'))) return { source: 'existing' };
  let entries: string[] | undefined;
  try {
    entries = readdirSync(dataDir);
  } catch (e) {
    if (errno(e) !== 'ENOENT') throw e;
  }
  if (entries && entries.length > 0) return { source: 'existing' };
  const parent = dirname(dataDir);
  const prefix = `.${basename(dataDir)}${TMP_PREFIX}`;
  let tmp: string | undefined;
  try {
    const template = await ensureTemplate(o);
    mkdirSync(parent, { recursive: true });
    removeStale(parent, prefix);
    tmp = tmpName(parent, prefix);
    copyTree(join(template.dir, PGDATA), tmp);
    if (entries) await rmdir(dataDir);
    await rename(tmp, dataDir);
    tmp = undefined;
    touch(join(template.dir, STAMP));
    return { source: template.built ? 'new-template' : 'template' };
  } catch (error) {
    if (tmp) await rm(tmp, { recursive: true, force: true });
    return { source: 'initdb', error };
  }
}

/** Marks a template used now (for {@link pruneTemplates}). */
function touch(file: string): void {
  try {
    // Wall time: the file's mtime is what other processes compare.
    const now = new Date(systemClock.now());
    utimesSync(file, now, now);
  } catch {
    // Only the pruning order depends on it.
  }
}
