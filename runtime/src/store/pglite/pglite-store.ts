import { mkdir } from 'node:fs/promises';
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import { DrizzleStore } from '../drizzle-store.js';
import type { Db } from '../drizzle-store.js';
import { migrationsFolder } from '../migrations.js';
import { schema } from '../schema.js';

/**
 * The embedded store: PGlite (Postgres compiled to WASM) in `dataDir`, durable across restarts.
 * One process at a time may open a data dir: callers lock it first (`DataDirLock`, as
 * `startRuntime` does). Without `dataDir` it is in memory (tests).
 */
export async function openPgliteStore(opts: { dataDir?: string; contentMinChars?: number } = {}): Promise<DrizzleStore> {
  if (opts.dataDir) await mkdir(opts.dataDir, { recursive: true });
  const client = opts.dataDir ? new PGlite(opts.dataDir) : new PGlite();
  await client.waitReady;
  const db = drizzle({ client, schema });
  await migrate(db, { migrationsFolder });
  // PGlite runs a query only between transactions (its own mutex), so the hot path's single
  // statements interleave safely with drizzle's transactions.
  const raw = async (_name: string, text: string, values: unknown[]) => (await client.query<Record<string, unknown>>(text, values)).rows;
  return new DrizzleStore('pglite', db as unknown as Db, () => client.close(), raw, 1, opts.contentMinChars);
}
