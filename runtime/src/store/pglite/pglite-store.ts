import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import { DrizzleStore } from '../drizzle-store.js';
import { nextTurn, PreparedStatements } from './prepared.js';
import type { Db } from '../drizzle-store.js';
import { migrationsApplied, migrationsFolder } from '../migrations.js';
import { schema } from '../schema.js';
import { prepareDataDir, templateTarball } from './template.js';
import { pgliteWasmModule } from './wasm.js';
import type { DataDirSource } from './template.js';

export interface PgliteStoreOptions {
  /**
   * Where the data lives, durable across restarts; without it, in memory (tests), loaded from the
   * template's tarball (unless `template` is `false`).
   */
  dataDir?: string;
  contentMinChars?: number;
  /**
   * A new `dataDir` is copied from a cached template (see `template.ts`): where the templates are
   * kept (default `AO_CACHE_DIR`, else `$XDG_CACHE_HOME/ao` or `~/.cache/ao`), or `false` to make
   * it with PGlite's initdb and the migrator, as without a template.
   */
  template?: { cacheDir?: string } | false;
  /** Told how `dataDir` (or the in-memory database) was found or made (tests, start-up diagnostics). */
  onDataDir?: (source: DataDirSource, error?: unknown) => void;
}

/**
 * The embedded store: PGlite (Postgres compiled to WASM) in `dataDir`, durable across restarts.
 * One process at a time may open a data dir: callers lock it first (`DataDirLock`, as
 * `startRuntime` does). Without `dataDir` it is in memory (tests).
 */
export async function openPgliteStore(opts: PgliteStoreOptions = {}): Promise<DrizzleStore> {
  // Compiled while the data directory is made (see wasm.ts).
  const wasm = pgliteWasmModule();
  if (opts.dataDir) {
    if (opts.template !== false) {
      const made = await prepareDataDir(opts.dataDir, {
        conf: PGLITE_CONF,
        migrationsFolder,
        ...(opts.template?.cacheDir ? { cacheDir: opts.template.cacheDir } : {}),
      });
      opts.onDataDir?.(made.source, made.error);
    }
    await mkdir(opts.dataDir, { recursive: true });
  }
  let loadDataDir: Blob | undefined;
  if (!opts.dataDir && opts.template !== false) {
    try {
      const made = await templateTarball({ conf: PGLITE_CONF, migrationsFolder, ...(opts.template?.cacheDir ? { cacheDir: opts.template.cacheDir } : {}) });
      loadDataDir = made.tarball;
      opts.onDataDir?.(made.built ? 'new-template' : 'template');
    } catch (error) {
      // As for a data directory: without a template, PGlite's initdb makes the database.
      opts.onDataDir?.('initdb', error);
    }
  }
  const pgliteWasm = await wasm;
  // One options object: `new PGlite(undefined, options)` ignores `options` (it reads the first
  // argument as the options when it is not a path), so in-memory stores once ran without them.
  const client = yielding(
    new PGlite({
      ...(opts.dataDir ? { dataDir: opts.dataDir } : {}),
      postgresqlconf: PGLITE_CONF,
      ...(loadDataDir ? { loadDataDir } : {}),
      ...(pgliteWasm ? { pgliteWasmModule: pgliteWasm } : {}),
    }),
  );
  await client.waitReady;
  const db = drizzle({ client, schema });
  if (!(await migrationsApplied((text) => client.query<Record<string, unknown>>(text).then((r) => r.rows), migrationsFolder)))
    await migrate(db, { migrationsFolder });
  // PGlite runs a statement only between transactions (its own mutex, which the prepared
  // statements hold too), so the hot path's single statements interleave safely with drizzle's transactions.
  // The hot path's statements (commits) are prepared once by name, as on Postgres.
  const prepared = new PreparedStatements(client);
  const raw = (name: string, text: string, values: unknown[]) => prepared.query(name, text, values);
  return new DrizzleStore('pglite', db as unknown as Db, () => client.close(), raw, 1, opts.contentMinChars);
}

/**
 * Postgres's default 128 MB of shared buffers is touched at start and held: most of an idle
 * server's memory (idle RSS of `ao serve` 350 MiB with it, see DESIGN.md). The embedded store's
 * hot pages (recent journal rows, the runs' and indexes' right edges) fit in far less; the rest
 * is read from the files, which the OS caches.
 */
const PGLITE_CONF = 'shared_buffers = 32MB';

const YIELDING = new Set<PropertyKey>(['query', 'exec', 'transaction']);

/**
 * `client` whose statements each start on a turn of the event loop of their own. PGlite executes
 * on this thread and answers through promises, so without this a busy store (runs committing one
 * statement after another) chains microtask after microtask and the loop never reaches its I/O
 * phase: HTTP requests (a burst of submits) wait for whole runs to finish. The turn costs
 * microseconds; a statement inside a transaction (its `tx`) is not delayed.
 */
function yielding(client: PGlite): PGlite {
  return new Proxy(client, {
    get(target, prop) {
      const v: unknown = Reflect.get(target, prop, target);
      if (typeof v !== 'function') return v;
      const f = (v as (...a: unknown[]) => unknown).bind(target);
      return YIELDING.has(prop) ? async (...a: unknown[]) => (await nextTurn(), f(...a)) : f;
    },
  });
}
