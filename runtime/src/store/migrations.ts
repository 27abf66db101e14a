import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The committed drizzle-kit migrations, resolved from this file so it works from any cwd. */
export const migrationsFolder = fileURLToPath(new URL('./drizzle', import.meta.url));

/**
 * Whether the database has every migration in `folder` already, by drizzle's own rule: its
 * migrator applies the migrations newer (`when`, in the folder's journal) than the last one it
 * recorded, so when that one is at least as new as the journal's last it would apply nothing.
 * One query instead of the migrator's statements (each its own sync to disk on PGlite) and
 * reading and hashing every migration file. False when it cannot tell (no migrations table yet):
 * the migrator then runs. Both stores call it with their own query (no driver is loaded here).
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
