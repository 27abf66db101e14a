import { drizzle } from 'drizzle-orm/node-postgres';
import { migrate } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import { DrizzleStore } from '../drizzle-store.js';
import type { Db } from '../drizzle-store.js';
import { migrationsFolder } from '../migrations.js';
import { schema } from '../schema.js';

/** The Postgres store (`DATABASE_URL`): a pool, migrations applied at open. */
export async function openPgStore(opts: { url: string; max?: number }): Promise<DrizzleStore> {
  const pool = new pg.Pool({ connectionString: opts.url, max: opts.max ?? 10 });
  // A pool error (e.g. the server restarting) must not crash the process; queries will fail instead.
  pool.on('error', (err) => console.error('[store] postgres pool error:', err.message));
  const db = drizzle({ client: pool, schema });
  try {
    await migrate(db, { migrationsFolder });
  } catch (e) {
    await pool.end();
    throw e;
  }
  // The hot path's statements are named: each connection prepares them once and reuses the plan.
  const raw = async (name: string, text: string, values: unknown[]) => (await pool.query({ name, text, values })).rows as Array<Record<string, unknown>>;
  return new DrizzleStore('postgres', db as unknown as Db, () => pool.end(), raw);
}
