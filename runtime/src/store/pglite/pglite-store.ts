import { readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import { DrizzleStore } from '../drizzle-store.js';
import { PreparedStatements } from './prepared.js';
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
  if (!(await migrationsApplied((text) => client.query<Record<string, unknown>>(text).then((r) => r.rows), migrationsFolder))) await migrate(db, { migrationsFolder });
  // PGlite runs a statement only between transactions (its own mutex, which the prepared
  // statements hold too), so the hot path's single statements interleave safely with drizzle's transactions.
  // The hot path's statements (commits) are prepared once by name, as on Postgres.
  const prepared = new PreparedStatements(client);
  const raw = (name: string, text: string, values: unknown[]) => prepared.query(name, text, values);
  return new DrizzleStore('pglite', db as unknown as Db, () => client.close(), raw, 1, opts.contentMinChars);
}

/**
 * Whether the database has every migration in `folder` already, by drizzle's own rule: its
 * migrator applies the migrations newer (`when`, in the folder's journal) than the last one it
 * recorded, so when that one is at least as new as the journal's last it would apply nothing.
 * One query instead of the migrator's five statements (each its own sync to disk on PGlite) and
 * reading and hashing every migration file. False when it cannot tell (no migrations table yet):
 * the migrator then runs as before.
 */
export async function migrationsApplied(query: (text: string) => Promise<Array<Record<string, unknown>>>, folder: string): Promise<boolean> {
  // Read synchronously (a small file): while PGlite starts, the thread pool an async read waits for is busy (hundreds of ms under load).
  const journal = JSON.parse(readFileSync(join(folder, 'meta', '_journal.json'), 'utf8')) as { entries: Array<{ when: number }> };
  const newest = journal.entries.at(-1)?.when;
  if (newest === undefined) return true;
  const rows = await query('select created_at from "drizzle"."__drizzle_migrations" order by created_at desc limit 1').catch(() => undefined);
  const last = rows?.[0]?.created_at;
  return last !== undefined && last !== null && Number(last) >= newest;
}

