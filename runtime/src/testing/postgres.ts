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
    const c = new pg.Client({ connectionString: TEST_PG_URL, connectionTimeoutMillis: 3000 });
    try {
      await c.connect();
      await c.end();
      return true;
    } catch (e) {
      if (process.env.CI) throw new Error(`CI is set but Postgres at ${TEST_PG_URL} is unreachable: ${(e as Error).message}`, { cause: e });
      console.warn(`[tests] Postgres at ${TEST_PG_URL} unreachable: Postgres suites skipped (they run under CI)`);
      return false;
    }
  })();
  return reachable;
}

/** A fresh database on the test server, dropped by `drop()`. */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `ao_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: TEST_PG_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(TEST_PG_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: TEST_PG_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}
