import { and, arrayOverlaps, asc, desc, eq, inArray, sql } from 'drizzle-orm';
import { isoNow } from '../clock/mod.js';
import type { Envelope } from '../envelope/mod.js';
import type { SecretRecord, CheckpointRecord, CheckpointSummary, NodeIdClaim, NodeIdHolder } from './records.js';
import { beatNodeId, nodeIdHolder, releaseNodeId, takeNodeId } from './node-ids.js';
import { checkpoints, journal, secrets } from './schema.js';
import { CHECKPOINT_COLUMNS, JOURNAL_COLUMNS, iso } from './store-rows.js';
import { StoreReader } from './journal-reader.js';

/**
 * Reads of a run's log, checkpoints and turns by the engine and the gateway, and the secrets and
 * node-id rows (a part of `DrizzleStore`: drizzle-store.ts).
 */
export abstract class StoreReads extends StoreReader {
  async listEventsOfType(runId: string, prefix: string): Promise<Envelope[]> {
    const rows = await this.db.select(JOURNAL_COLUMNS).from(journal).where(eq(journal.runId, runId)).orderBy(asc(journal.seq));
    return this.expand(rows, undefined, (e) => e.type.startsWith(prefix));
  }

  async getEvents(runId: string, ids: string[]): Promise<Envelope[]> {
    if (!ids.length) return [];
    const rows = await this.db
      .select(JOURNAL_COLUMNS)
      .from(journal)
      .where(and(eq(journal.runId, runId), arrayOverlaps(journal.ids, ids)))
      .orderBy(asc(journal.seq));
    const wanted = new Set(ids);
    return this.expand(rows, undefined, (e) => wanted.has(e.id));
  }

  async latestCheckpoint(runId: string): Promise<CheckpointRecord | undefined> {
    const rows = await this.db.select(CHECKPOINT_COLUMNS).from(checkpoints).where(eq(checkpoints.runId, runId)).orderBy(desc(checkpoints.step)).limit(1);
    return (await this.checkpointsOf(rows))[0];
  }

  async latestCheckpoints(runIds: string[]): Promise<Map<string, CheckpointRecord>> {
    const out = new Map<string, CheckpointRecord>();
    if (!runIds.length) return out;
    const rows = await this.db
      .selectDistinctOn([checkpoints.runId], CHECKPOINT_COLUMNS)
      .from(checkpoints)
      .where(inArray(checkpoints.runId, runIds))
      .orderBy(checkpoints.runId, desc(checkpoints.step));
    for (const cp of await this.checkpointsOf(rows)) out.set(cp.runId, cp);
    return out;
  }

  async firstEvents(runIds: string[]): Promise<Map<string, Envelope>> {
    const out = new Map<string, Envelope>();
    if (!runIds.length) return out;
    const rows = await this.db
      .select(JOURNAL_COLUMNS)
      .from(journal)
      .where(and(inArray(journal.runId, runIds), eq(journal.seq, 1)));
    for (const e of await this.expand(rows, undefined, (e) => e.seq === 1)) out.set(e.runId, e);
    return out;
  }

  async eventsAfter(
    ranges: ReadonlyArray<{ runId: string; after: number }>,
    o: { bases?: ReadonlyMap<string, readonly unknown[]> } = {},
  ): Promise<Map<string, Envelope[]>> {
    const out = new Map<string, Envelope[]>(ranges.map((r) => [r.runId, []]));
    if (!ranges.length) return out;
    const after = new Map(ranges.map((r) => [r.runId, r.after]));
    const rows = await this.db
      .select(JOURNAL_COLUMNS)
      .from(journal)
      .innerJoin(
        sql`unnest(${sql.param(ranges.map((r) => r.runId))}::text[], ${sql.param(ranges.map((r) => r.after))}::int[]) as f(run_id, after)`,
        sql`${journal.runId} = f.run_id and ${journal.lastSeq} > f.after`,
      )
      .orderBy(asc(journal.runId), asc(journal.seq));
    for (const e of await this.expand(rows, new Map(o.bases), (e) => e.seq > after.get(e.runId)!)) out.get(e.runId)!.push(e);
    return out;
  }

  primeRequests(runId: string, last: ReadonlyMap<string, { seq: number; messages: readonly unknown[] }>): void {
    this.histories.prime(runId, last);
  }

  async getCheckpoint(runId: string, step: number): Promise<CheckpointRecord | undefined> {
    const rows = await this.db
      .select(CHECKPOINT_COLUMNS)
      .from(checkpoints)
      .where(and(eq(checkpoints.runId, runId), eq(checkpoints.step, step)))
      .limit(1);
    return (await this.checkpointsOf(rows))[0];
  }

  async listCheckpoints(runId: string): Promise<CheckpointSummary[]> {
    const rows = await this.db
      .select({
        runId: checkpoints.runId,
        step: checkpoints.step,
        seq: checkpoints.seq,
        node: checkpoints.node,
        graphVersion: checkpoints.graphVersion,
        sizeBytes: checkpoints.sizeBytes,
        createdAt: checkpoints.createdAt,
      })
      .from(checkpoints)
      .where(eq(checkpoints.runId, runId))
      .orderBy(asc(checkpoints.step));
    return rows.map((r) => ({ ...r, createdAt: iso(r.createdAt)! }));
  }

  async putSecrets(rows: SecretRecord[]): Promise<void> {
    if (!rows.length) return;
    const createdAt = isoNow();
    await this.db
      .insert(secrets)
      .values(rows.map((r) => ({ ...r, createdAt })))
      .onConflictDoUpdate({
        target: [secrets.runId, secrets.handle],
        set: { keyId: sql`excluded.key_id`, iv: sql`excluded.iv`, data: sql`excluded.data`, createdAt },
      });
  }

  async getSecrets(runIds: string[], handles: string[]): Promise<SecretRecord[]> {
    if (!runIds.length || !handles.length) return [];
    return this.db
      .select({ runId: secrets.runId, handle: secrets.handle, keyId: secrets.keyId, iv: secrets.iv, data: secrets.data })
      .from(secrets)
      .where(and(inArray(secrets.runId, runIds), inArray(secrets.handle, handles)));
  }

  takeNodeId(claim: NodeIdClaim & { replacing?: string }): Promise<{ taken: true } | { taken: false; holder: NodeIdHolder | undefined }> {
    return takeNodeId(this.db, claim);
  }

  beatNodeId(id: string, instance: string): Promise<boolean> {
    return beatNodeId(this.db, id, instance);
  }

  releaseNodeId(id: string, instance: string): Promise<void> {
    return releaseNodeId(this.db, id, instance);
  }

  nodeIdHolder(id: string): Promise<NodeIdHolder | undefined> {
    return nodeIdHolder(this.db, id);
  }
}
