import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import { afterAll, beforeAll } from 'vitest';
import { DrizzleStore } from '../store/drizzle-store.js';
import type { Db } from '../store/drizzle-store.js';
import { migrationsFolder } from '../store/migrations.js';
import { schema } from '../store/schema.js';

/**
 * For the store's own tests: one in-memory PGlite per `describe`, migrated before its tests and
 * closed after them. `open()` gives a new `DrizzleStore` over it each call (a new process's caches,
 * the same data); `client` is the database itself, for reading or rewriting rows in SQL.
 */
export function pgliteStores(): { readonly client: PGlite; open(): DrizzleStore } {
  let db: PGlite | undefined;
  beforeAll(async () => {
    db = new PGlite();
    await migrate(drizzle({ client: db, schema }), { migrationsFolder });
  });
  afterAll(async () => {
    await db?.close();
  });
  const client = (): PGlite => {
    if (!db) throw new Error('pgliteStores: the database opens in beforeAll');
    return db;
  };
  return {
    get client() {
      return client();
    },
    open() {
      const c = client();
      return new DrizzleStore(
        'pglite',
        drizzle({ client: c, schema }) as unknown as Db,
        async () => undefined,
        async (_n, text, values) => (await c.query<Record<string, unknown>>(text, values)).rows,
        1,
      );
    },
  };
}
