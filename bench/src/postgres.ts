import { createTestDatabase, postgresUnreachable } from '@ao/runtime/testing';

/** Server the Postgres mode uses; the bench creates and drops its own database on it. */
export const BENCH_PG_ADMIN_URL = process.env.AO_BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export type ScratchDatabase = { ok: true; name: string; url: string; drop: () => Promise<void> } | { ok: false; reason: string };

/**
 * A fresh database `ao_bench_<random>` on `adminUrl`, or why there is none (server unreachable).
 * A server that answers but refuses to create the database is an error.
 */
export async function createScratchDatabase(adminUrl = BENCH_PG_ADMIN_URL): Promise<ScratchDatabase> {
  const why = await postgresUnreachable(adminUrl);
  if (why !== undefined) return { ok: false, reason: `Postgres at ${redact(adminUrl)} unreachable: ${why}` };
  return { ok: true, ...(await createTestDatabase({ adminUrl, prefix: 'ao_bench' })) };
}

/** The URL without its password, for printing. */
export function redact(url: string): string {
  const u = new URL(url);
  if (u.password) u.password = '***';
  return u.toString();
}
