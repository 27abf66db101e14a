import { describe, expect, it } from 'vitest';
import { createTestDatabase, migrationBarrier, postgresAvailable, queryOnce } from '../../testing/postgres.js';
import { openPgStore } from './pg-store.js';

const pgUp = await postgresAvailable();
/** `pnpm test:concurrent-start` repeats the race (AO_CONCURRENT_START_TRIALS=20). */
const TRIALS = Number(process.env.AO_CONCURRENT_START_TRIALS ?? 2);

describe.skipIf(!pgUp)('Postgres stores opened at once on a fresh database', () => {
  it.each(Array.from({ length: TRIALS }, (_, i) => i + 1))(
    'all come up (migrations run under an advisory lock, one process at a time): trial %i',
    async () => {
      const db = await createTestDatabase({ prefix: 'ao_concurrent' });
      try {
        // Six stores, each with its own pool, as six processes would be: regression for
        // `Failed query: CREATE TABLE "events"` when a gateway and two nodes started together.
        const barrier = await migrationBarrier(db.url);
        const opening = Promise.allSettled(Array.from({ length: 6 }, () => openPgStore({ url: db.url, max: 2 })));
        await barrier.release(6);
        const opened = await opening;
        const failed = opened.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
        for (const r of opened) if (r.status === 'fulfilled') await r.value.close();
        expect(failed).toEqual([]);
        // Every migration applied exactly once, and the lock is not left held.
        const applied = await queryOnce(db.url, 'select count(*)::int as n from drizzle.__drizzle_migrations');
        const tables = await queryOnce(db.url, "select count(*)::int as n from pg_tables where schemaname = 'public'");
        expect(applied[0]!.n).toBeGreaterThanOrEqual(7);
        expect(tables[0]!.n).toBeGreaterThan(0);
        const locks = await queryOnce(
          db.url,
          "select count(*)::int as n from pg_locks where locktype = 'advisory' and database = (select oid from pg_database where datname = current_database())",
        );
        expect(locks[0]!.n).toBe(0);
        // And a store opened later on the migrated database finds nothing to do.
        const again = await openPgStore({ url: db.url, max: 1 });
        await again.close();
        expect((await queryOnce(db.url, 'select count(*)::int as n from drizzle.__drizzle_migrations'))[0]!.n).toBe(applied[0]!.n);
      } finally {
        await db.drop();
      }
    },
    60_000,
  );
});
