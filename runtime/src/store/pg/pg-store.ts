import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { log } from '../../log/mod.js';
import { DrizzleStore } from '../drizzle-store.js';
import type { Db } from '../drizzle-store.js';
import { migrationsApplied, migrationsFolder } from '../migrations.js';
import { schema } from '../schema.js';

/**
 * The advisory lock the migrations run under ('AOMIGRAT' as a bigint). Advisory locks are per
 * database, so one key serves every database on a server.
 */
export const MIGRATION_LOCK_KEY = 0x414f4d4947524154n;

/**
 * Apply the migrations, one process at a time. Each migration is a transaction, but two
 * processes started at once on a fresh database both find it unmigrated and both create the
 * tables, and the second fails (`Failed query: CREATE TABLE "events"`). Under the lock the
 * second waits, then finds everything applied. The lock is held by a session of its own, not a
 * pool connection, and ends with it, even if this process dies meanwhile.
 */
export async function migrateUnderLock(url: string): Promise<void> {
  const session = new pg.Client({ connectionString: url });
  await session.connect();
  try {
    await session.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY.toString()]);
    await migrate(drizzle({ client: session, schema }), { migrationsFolder });
    await session.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY.toString()]);
  } finally {
    // Ending the session releases the lock too, if a migration failed.
    await session.end().catch(() => undefined);
  }
}

/** The Postgres store (`DATABASE_URL`): a pool, migrations applied at open (under an advisory lock). */
export async function openPgStore(opts: { url: string; max?: number; contentMinChars?: number }): Promise<DrizzleStore> {
  const pool = new pg.Pool({ connectionString: opts.url, max: opts.max ?? 10 });
  // A pool error (e.g. the server restarting) must not crash the process; queries will fail instead.
  pool.on('error', (err) => log.error(`postgres pool error: ${err.message}`, { component: 'store' }));
  // A database with every migration needs neither the lock's session nor the migrator: migrations
  // only move forward, so what is applied stays applied, whoever else is starting.
  const applied = await migrationsApplied(async (text) => (await pool.query(text)).rows as Array<Record<string, unknown>>, migrationsFolder);
  if (!applied) {
    try {
      await migrateUnderLock(opts.url);
    } catch (e) {
      await pool.end().catch(() => undefined);
      throw e;
    }
  }
  const db = drizzle({ client: pool, schema });
  // The hot path's statements are named: each connection prepares them once and reuses the plan.
  const raw = async (name: string, text: string, values: unknown[]) => (await pool.query({ name, text, values })).rows as Array<Record<string, unknown>>;
  return new DrizzleStore('postgres', db as unknown as Db, () => pool.end(), raw, undefined, opts.contentMinChars);
}
