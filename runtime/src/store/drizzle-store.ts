import { and, asc, desc, eq, gt, inArray, lt, sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { AoError } from '@ao/graphs';
import { parseEnvelope } from '../envelope/mod.js';
import type { Envelope } from '../envelope/mod.js';
import type { ListRunsQuery, Store } from './port.js';
import { RunRecordSchema } from './records.js';
import type { NewRun, RunPatch, RunRecord, RunStatus } from './records.js';
import { events, runs } from './schema.js';
import type { Schema } from './schema.js';

/** The one drizzle database type both drivers give (a union of the two breaks the query API). */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;

const encodeCursor = (n: number) => Buffer.from(String(n)).toString('base64url');
const decodeCursor = (c: string): number => {
  const text = /^[A-Za-z0-9_-]+$/.test(c) ? Buffer.from(c, 'base64url').toString() : '';
  const n = /^[1-9][0-9]{0,15}$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n)) throw new AoError('AO_VALIDATION', 'invalid cursor: pass back the `next` of a previous page', { field: 'query.cursor' });
  return n;
};

/** Timestamps come back as Postgres text; normalise to ISO 8601 UTC. */
const iso = (v: string | null): string | null => (v === null ? null : new Date(v).toISOString());

function toRecord(row: typeof runs.$inferSelect): RunRecord {
  const r = RunRecordSchema.safeParse({
    ...row,
    createdAt: iso(row.createdAt),
    updatedAt: iso(row.updatedAt),
    startedAt: iso(row.startedAt),
    finishedAt: iso(row.finishedAt),
  });
  if (!r.success) throw new AoError('AO_STORE_CORRUPT', `run ${row.id}: ${r.error.issues[0]?.message}`, { details: { runId: row.id } });
  return r.data;
}

function toEnvelope(row: typeof events.$inferSelect): Envelope {
  try {
    return parseEnvelope({ ...row, time: new Date(row.time).toISOString() });
  } catch (e) {
    throw new AoError('AO_STORE_CORRUPT', `event ${row.id} of run ${row.runId} is not a valid envelope`, { cause: e });
  }
}

export class DrizzleStore implements Store {
  constructor(
    readonly kind: 'pglite' | 'postgres',
    private readonly db: Db,
    private readonly onClose: () => Promise<void>,
  ) {}

  async createRun(run: NewRun): Promise<RunRecord> {
    const now = new Date().toISOString();
    const [row] = await this.db
      .insert(runs)
      .values({
        ...run,
        status: 'pending',
        usage: { inputTokens: 0, outputTokens: 0, totalTokens: 0, llmCalls: 0, toolCalls: 0, perTool: {} },
        createdAt: now,
        updatedAt: now,
      })
      .returning();
    return toRecord(row!);
  }

  async getRun(id: string): Promise<RunRecord | undefined> {
    const [row] = await this.db.select().from(runs).where(eq(runs.id, id)).limit(1);
    return row ? toRecord(row) : undefined;
  }

  async listRuns(q: ListRunsQuery): Promise<{ runs: RunRecord[]; next: string | null }> {
    const conds = [];
    if (q.status) conds.push(eq(runs.status, q.status));
    if (q.graph) conds.push(eq(runs.graph, q.graph));
    if (q.cursor) conds.push(lt(runs.n, decodeCursor(q.cursor)));
    const rows = await this.db
      .select()
      .from(runs)
      .where(conds.length ? and(...conds) : undefined)
      .orderBy(desc(runs.n))
      .limit(q.limit + 1);
    const page = rows.slice(0, q.limit);
    return { runs: page.map(toRecord), next: rows.length > q.limit ? encodeCursor(page[page.length - 1]!.n) : null };
  }

  async findRuns(q: { statuses: RunStatus[]; owner?: string }): Promise<RunRecord[]> {
    const conds = [inArray(runs.status, q.statuses)];
    if (q.owner !== undefined) conds.push(eq(runs.owner, q.owner));
    const rows = await this.db.select().from(runs).where(and(...conds)).orderBy(asc(runs.n));
    return rows.map(toRecord);
  }

  async commit(batch: { runId: string; events: Envelope[]; patch?: RunPatch }): Promise<void> {
    const maxSeq = batch.events.reduce((m, e) => Math.max(m, e.seq), 0);
    await this.db.transaction(async (tx) => {
      if (batch.events.length) {
        await tx
          .insert(events)
          .values(
            batch.events.map((e) => ({
              id: e.id,
              runId: e.runId,
              seq: e.seq,
              type: e.type,
              from: e.from,
              to: e.to,
              causationId: e.causationId,
              payload: e.payload ?? null,
              trace: e.trace,
              time: e.time,
            })),
          )
          .onConflictDoNothing({ target: events.id });
      }
      if (batch.patch || maxSeq > 0) {
        await tx
          .update(runs)
          .set({
            ...batch.patch,
            updatedAt: new Date().toISOString(),
            ...(maxSeq > 0 ? { lastSeq: sql`greatest(${runs.lastSeq}, ${maxSeq})` } : {}),
          })
          .where(eq(runs.id, batch.runId));
      }
    });
  }

  async listEvents(runId: string, q: { after?: number; limit: number }): Promise<Envelope[]> {
    const rows = await this.db
      .select()
      .from(events)
      .where(and(eq(events.runId, runId), gt(events.seq, q.after ?? 0)))
      .orderBy(asc(events.seq))
      .limit(q.limit);
    return rows.map(toEnvelope);
  }

  close(): Promise<void> {
    return this.onClose();
  }
}
