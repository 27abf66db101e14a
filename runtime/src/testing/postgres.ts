import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** Server used by the Postgres suites; CI and the dev machines have one on 127.0.0.1:5432. */
export const TEST_PG_URL = process.env.AO_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

let reachable: Promise<boolean> | undefined;

/**
 * Whether the Postgres suites can run. Under CI they must: an unreachable server throws instead of
 * skipping. Elsewhere they are skipped with a visible note (a laptop without Postgres).
 */
export function postgresAvailable(): Promise<boolean> {
  reachable ??= (async () => {
    const why = await postgresUnreachable(TEST_PG_URL);
    if (why === undefined) return true;
    if (process.env.CI) throw new Error(`CI is set but Postgres at ${TEST_PG_URL} is unreachable: ${why}`);
    console.warn(`[tests] Postgres at ${TEST_PG_URL} unreachable: Postgres suites skipped (they run under CI)`);
    return false;
  })();
  return reachable;
}

/** Why Postgres at `url` cannot be used, or undefined when it answers. */
export async function postgresUnreachable(url: string): Promise<string | undefined> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  try {
    await c.connect();
    await c.end();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** A fresh database `<prefix>_<random>` on the server at `adminUrl`, dropped by `drop()`. */
export async function createTestDatabase(o: { adminUrl?: string; prefix?: string } = {}): Promise<{ name: string; url: string; drop: () => Promise<void> }> {
  const adminUrl = o.adminUrl ?? TEST_PG_URL;
  const name = `${o.prefix ?? 'ao_test'}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** One statement on the database at `url` (tests that set up a row no API writes, e.g. another host's). */
export async function queryOnce(url: string, text: string, values: unknown[] = []): Promise<Array<Record<string, unknown>>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, values)).rows as Array<Record<string, unknown>>;
  } finally {
    await c.end();
  }
}

/** A session of its own on the database at `url`, for tests that hold a transaction or a lock open while other processes work. */
export async function openSession(
  url: string,
): Promise<{ query: (text: string, values?: unknown[]) => Promise<Array<Record<string, unknown>>>; end: () => Promise<void> }> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  return {
    query: async (text, values = []) => (await c.query(text, values)).rows as Array<Record<string, unknown>>,
    end: () => c.end(),
  };
}

/**
 * Make the processes about to open a fresh database start their migrations at the same moment:
 * a transaction of ours creates drizzle's schema and stays open, so whoever creates it next
 * waits for it (and, under the migration lock, the others wait for that one). `release()` waits
 * until `n` sessions wait, then rolls back: they all go at once.
 */
export async function migrationBarrier(url: string): Promise<{ waiting: () => Promise<number>; release: (n: number, timeoutMs?: number) => Promise<void> }> {
  const s = await openSession(url);
  await s.query('begin');
  await s.query('create schema drizzle');
  const waiting = async () =>
    Number(
      (
        await queryOnce(
          url,
          'select count(*)::int as n from pg_locks l join pg_stat_activity a on a.pid = l.pid where not l.granted and a.datname = current_database()',
        )
      )[0]!.n,
    );
  return {
    waiting,
    release: async (n, timeoutMs = 120_000) => {
      try {
        const end = Date.now() + timeoutMs;
        while ((await waiting()) < n) {
          if (Date.now() > end) throw new Error(`only ${await waiting()} of ${n} sessions came to wait for the migrations`);
          await new Promise((r) => setTimeout(r, 50));
        }
        await s.query('rollback');
      } finally {
        await s.end();
      }
    },
  };
}
