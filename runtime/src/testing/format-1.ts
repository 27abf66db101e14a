import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import type { Envelope } from '../envelope/mod.js';
import { migrationsFolder } from '../store/migrations.js';
import type { CheckpointRecord, RunRecord } from '../store/records.js';
import { runs } from '../store/schema.js';

/** The last migration of log format 1 (one `events` row per envelope). */
const FORMAT_1_MIGRATIONS = 7;

/**
 * An embedded data directory as the code of log format 1 left it: migrated up to 0006 only, each
 * run's envelopes one row each in `events`, as that code's append wrote them. Opening it with
 * `openPgliteStore` applies the migrations since (0007 rewrites the rows as format 2).
 */
export async function writeFormat1Store(
  dataDir: string,
  dumps: ReadonlyArray<{ run: RunRecord; events: Envelope[]; checkpoints: CheckpointRecord[] }>,
): Promise<void> {
  const folder = await mkdtemp(join(tmpdir(), 'ao-format-1-'));
  try {
    await cp(migrationsFolder, folder, { recursive: true });
    const journalFile = join(folder, 'meta', '_journal.json');
    const meta = JSON.parse(await readFile(journalFile, 'utf8')) as { entries: unknown[] };
    await writeFile(journalFile, JSON.stringify({ ...meta, entries: meta.entries.slice(0, FORMAT_1_MIGRATIONS) }));
    const client = new PGlite(dataDir);
    try {
      const db = drizzle({ client });
      await migrate(db, { migrationsFolder: folder });
      for (const { run, events, checkpoints: cps } of dumps) {
        const { lastSeq: _l, owner: _o, leaseExpiresAt: _e, ...row } = run;
        await db.insert(runs).values({
          ...row,
          owner: 'old',
          leaseExpiresAt: new Date(Date.now() - 1000).toISOString(),
          lastSeq: events.at(-1)?.seq ?? 0,
          replay: row.replay ?? null,
        });
        for (const e of events) {
          await client.query(
            'insert into events (id, run_id, seq, type, from_path, to_path, causation_id, payload, trace, time) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)',
            [
              e.id,
              e.runId,
              e.seq,
              e.type,
              e.from,
              e.to,
              e.causationId,
              JSON.stringify(e.payload ?? null),
              e.trace === null ? null : JSON.stringify(e.trace),
              e.time,
            ],
          );
        }
        // As the code of that time wrote them: the state as jsonb (no `zstate` column then).
        for (const c of cps) {
          await client.query(
            'insert into checkpoints (run_id, step, seq, node, graph_version, state, size_bytes, created_at) values ($1, $2, $3, $4, $5, $6, $7, $8)',
            [run.id, c.step, c.seq, c.node, c.graphVersion, JSON.stringify(c.state), c.sizeBytes, c.createdAt],
          );
        }
      }
    } finally {
      await client.close();
    }
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}
