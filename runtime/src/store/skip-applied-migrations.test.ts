import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type * as PgliteMigrator from 'drizzle-orm/pglite/migrator';
import type * as PgMigrator from 'drizzle-orm/node-postgres/migrator';
import { createTestDatabase, postgresAvailable, queryOnce } from '../testing/postgres.js';
import { openPgStore } from './pg/pg-store.js';
import { migrationsApplied, migrationsFolder } from './migrations.js';
import { openPgliteStore } from './pglite/pglite-store.js';

// The migrators, counted: a store opened on a database that has every migration must not run them.
const calls = vi.hoisted(() => ({ pglite: 0, pg: 0 }));
vi.mock('drizzle-orm/pglite/migrator', async (importOriginal) => {
  const real = await importOriginal<typeof PgliteMigrator>();
  return { migrate: (...a: Parameters<typeof real.migrate>) => (calls.pglite++, real.migrate(...a)) };
});
vi.mock('drizzle-orm/node-postgres/migrator', async (importOriginal) => {
  const real = await importOriginal<typeof PgMigrator>();
  return { migrate: (...a: Parameters<typeof real.migrate>) => (calls.pg++, real.migrate(...a)) };
});

const tmp: string[] = [];
afterAll(() => Promise.all(tmp.map((d) => rm(d, { recursive: true, force: true }))));
const tempDir = async (prefix: string) => {
  const d = await mkdtemp(join(tmpdir(), prefix));
  tmp.push(d);
  return d;
};

/** A copy of the migrations folder whose journal keeps only its first `n` entries (a database made by older code). */
async function firstMigrations(n: number): Promise<string> {
  const folder = await tempDir('ao-migrations-');
  await cp(migrationsFolder, folder, { recursive: true });
  const journalFile = join(folder, 'meta', '_journal.json');
  const meta = JSON.parse(await readFile(journalFile, 'utf8')) as { entries: unknown[] };
  await writeFile(journalFile, JSON.stringify({ ...meta, entries: meta.entries.slice(0, n) }));
  return folder;
}

const pgUp = await postgresAvailable();
const journalLength = async () =>
  (JSON.parse(await readFile(join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as { entries: unknown[] }).entries.length;

describe('opening a store skips the migrator when every migration is applied', () => {
  beforeEach(() => {
    calls.pglite = 0;
    calls.pg = 0;
  });

  it('migrationsApplied: no migrations table, some migrations, all of them', async () => {
    const client = new PGlite();
    try {
      const query = async (text: string) => (await client.query<Record<string, unknown>>(text)).rows;
      expect(await migrationsApplied(query, migrationsFolder)).toBe(false);
      await migrate(drizzle({ client }), { migrationsFolder: await firstMigrations(3) });
      expect(await migrationsApplied(query, migrationsFolder)).toBe(false);
      await migrate(drizzle({ client }), { migrationsFolder });
      expect(await migrationsApplied(query, migrationsFolder)).toBe(true);
    } finally {
      await client.close();
    }
  });

  it('PGlite: a fresh directory is migrated, a migrated one is opened without the migrator, an older one gets the rest', async () => {
    // Without the template (template.test.ts covers it): a new directory is initdb's, then migrated here.
    const fresh = join(await tempDir('ao-pglite-migrate-'), 'pglite');
    const s1 = await openPgliteStore({ dataDir: fresh, template: false });
    await s1.close();
    expect(calls.pglite).toBe(1);
    const s2 = await openPgliteStore({ dataDir: fresh });
    expect((await s2.listRuns({ limit: 1 })).runs).toEqual([]);
    await s2.close();
    expect(calls.pglite).toBe(1);

    // Made by code that knew only the first 7 migrations (log format 1): opening applies 0007 and 0008.
    const older = join(await tempDir('ao-pglite-older-'), 'pglite');
    const c = new PGlite(older);
    await migrate(drizzle({ client: c }), { migrationsFolder: await firstMigrations(7) });
    await c.close();
    calls.pglite = 0;
    const s3 = await openPgliteStore({ dataDir: older });
    await s3.close();
    expect(calls.pglite).toBe(1);
    const check = new PGlite(older);
    try {
      const applied = await check.query<{ n: number }>('select count(*)::int as n from drizzle.__drizzle_migrations');
      expect(applied.rows[0]!.n).toBe(await journalLength());
      const journal = await check.query<{ n: number }>("select count(*)::int as n from pg_tables where tablename = 'journal'");
      expect(journal.rows[0]!.n).toBe(1);
    } finally {
      await check.close();
    }
  }, 60_000);

  it.skipIf(!pgUp)(
    'Postgres: a fresh database is migrated under the lock, a migrated one is opened without it',
    async () => {
      const db = await createTestDatabase({ prefix: 'ao_skip_migrate' });
      try {
        const s1 = await openPgStore({ url: db.url, max: 1 });
        await s1.close();
        expect(calls.pg).toBe(1);
        const s2 = await openPgStore({ url: db.url, max: 1 });
        expect((await s2.listRuns({ limit: 1 })).runs).toEqual([]);
        await s2.close();
        expect(calls.pg).toBe(1);
        expect((await queryOnce(db.url, 'select count(*)::int as n from drizzle.__drizzle_migrations'))[0]!.n).toBe(await journalLength());
      } finally {
        await db.drop();
      }
    },
    60_000,
  );
});
