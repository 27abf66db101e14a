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
export async function createTestDatabase(
  o: { adminUrl?: string; prefix?: string } = {},
): Promise<{ name: string; url: string; drop: () => Promise<void> }> {
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
