import { and, eq, lt, or, sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type { NodeIdClaim, NodeIdHolder } from './records.js';
import { nodeIds } from './schema.js';
import type { Schema } from './schema.js';

type Db = PgDatabase<PgQueryResultHKT, Schema>;

/** A holder silent this long is deleted when someone takes an id: its process is long gone. */
const FORGET_AFTER_MS = 24 * 3_600_000;

const holderColumns = {
  id: nodeIds.id,
  instance: nodeIds.instance,
  host: nodeIds.host,
  pidNs: nodeIds.pidNs,
  pid: nodeIds.pid,
  staleMs: nodeIds.staleMs,
  startedAt: nodeIds.startedAt,
  heartbeatAt: nodeIds.heartbeatAt,
  // Measured by the database, whose clock every node shares (the lease expiries use it too).
  heartbeatAgeMs: sql<number>`(extract(epoch from (now() - ${nodeIds.heartbeatAt})) * 1000)::float8`,
};

/** The store's side of `NodeIdentity` (see `Store.takeNodeId`). */
export async function takeNodeId(
  db: Db,
  c: NodeIdClaim & { replacing?: string },
): Promise<{ taken: true } | { taken: false; holder: NodeIdHolder | undefined }> {
  await db.delete(nodeIds).where(lt(nodeIds.heartbeatAt, sql`now() - ${FORGET_AFTER_MS} * interval '1 millisecond'`));
  const holder = { instance: c.instance, host: c.host, pidNs: c.pidNs, pid: c.pid, staleMs: c.staleMs, startedAt: sql`now()`, heartbeatAt: sql`now()` };
  // One statement: the row lock makes two processes asking at the same moment take turns, and
  // the second one sees the first one's fresh beat.
  const [won] = await db
    .insert(nodeIds)
    .values({ id: c.id, ...holder })
    .onConflictDoUpdate({
      target: nodeIds.id,
      set: holder,
      setWhere: or(
        lt(nodeIds.heartbeatAt, sql`now() - ${nodeIds.staleMs} * interval '1 millisecond'`),
        eq(nodeIds.instance, c.instance),
        c.replacing !== undefined ? eq(nodeIds.instance, c.replacing) : undefined,
      ),
    })
    .returning({ instance: nodeIds.instance });
  if (won) return { taken: true };
  return { taken: false, holder: await nodeIdHolder(db, c.id) };
}

export async function nodeIdHolder(db: Db, id: string): Promise<NodeIdHolder | undefined> {
  const [h] = await db.select(holderColumns).from(nodeIds).where(eq(nodeIds.id, id)).limit(1);
  return h
    ? { ...h, startedAt: new Date(h.startedAt).toISOString(), heartbeatAt: new Date(h.heartbeatAt).toISOString(), heartbeatAgeMs: Number(h.heartbeatAgeMs) }
    : undefined;
}

export async function beatNodeId(db: Db, id: string, instance: string): Promise<boolean> {
  const rows = await db
    .update(nodeIds)
    .set({ heartbeatAt: sql`now()` })
    .where(and(eq(nodeIds.id, id), eq(nodeIds.instance, instance)))
    .returning({ id: nodeIds.id });
  return rows.length > 0;
}

export async function releaseNodeId(db: Db, id: string, instance: string): Promise<void> {
  await db.delete(nodeIds).where(and(eq(nodeIds.id, id), eq(nodeIds.instance, instance)));
}
