import { sql } from 'drizzle-orm';
import { systemClock } from '../clock/mod.js';
import type { BucketState, BucketUpdate } from '../llm/limits/mod.js';
import type { Db } from './drizzle-store.js';

const EMPTY: BucketState = { at: 0, levels: {}, held: {} };

/**
 * The Postgres (and PGlite) bucket table of the LLM limits: in one transaction, lock the rows in
 * key order (two nodes never wait on each other crosswise), read them with the database's clock,
 * run the pure update, write the rows it returns. Rows are created once (empty: every bucket full)
 * before they are first locked, so a row that does not exist yet is never read unlocked.
 */
export class BucketRows {
  private readonly created = new Set<string>();

  constructor(private readonly db: Db) {}

  async update<T>(keys: readonly string[], fn: (states: ReadonlyMap<string, BucketState>, now: number) => BucketUpdate<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const missing = sorted.filter((k) => !this.created.has(k));
    if (missing.length) {
      await this.db.execute(
        sql`insert into llm_buckets (key, state) select k, ${JSON.stringify(EMPTY)}::jsonb from unnest(${`{${missing.map((k) => JSON.stringify(k)).join(',')}}`}::text[]) as k on conflict do nothing`,
      );
      for (const k of missing) this.created.add(k);
    }
    const list = `{${sorted.map((k) => JSON.stringify(k)).join(',')}}`;
    return this.db.transaction(async (tx) => {
      const res = await tx.execute(
        sql`select key, state, (extract(epoch from clock_timestamp()) * 1000)::float8 as now from llm_buckets where key = any(${list}::text[]) order by key for update`,
      );
      const rows = (res as { rows: unknown[] }).rows as Array<{ key: string; state: BucketState | string; now: number | string }>;
      const states = new Map<string, BucketState>();
      for (const r of rows) states.set(r.key, typeof r.state === 'string' ? (JSON.parse(r.state) as BucketState) : r.state);
      const now = rows.length ? Number(rows[0]!.now) : systemClock.now();
      const { next, out } = fn(states, now);
      if (next.size) {
        const json = JSON.stringify([...next].map(([key, state]) => ({ key, state })));
        await tx.execute(
          sql`update llm_buckets as b set state = v.state from json_to_recordset(${json}::json) as v(key text, state jsonb) where b.key = v.key`,
        );
      }
      return out;
    });
  }
}
