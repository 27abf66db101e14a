import { AoError } from '@ao/graphs';
import { payloadJsonOf } from '../envelope/mod.js';
import type { Envelope } from '../envelope/mod.js';

/** A statement run beneath drizzle by the adapter's client, prepared once per connection under `name`. */
export type RawQuery = (name: string, text: string, values: unknown[]) => Promise<Array<Record<string, unknown>>>;

/** The event columns of a JSON array of envelopes (see {@link eventsJson}), as a row source. */
export const EVENT_ROWS = (param: string) => `jsonb_to_recordset(${param}::jsonb) as v(id uuid, run_id text, seq int, type text, from_path text, to_path text, causation_id uuid, payload jsonb, trace jsonb, time timestamptz)`;
export const EVENT_COLUMNS = 'v.id, v.run_id, v.seq, v.type, v.from_path, v.to_path, v.causation_id, v.payload, v.trace, v.time';

/**
 * Envelopes as the JSON array the append statements read: serialised once, not column by column,
 * each payload's JSON reused from the journal's check (`payloadJsonOf`).
 */
export function eventsJson(batch: readonly Envelope[]): string {
  const rows = batch.map((e) => {
    const head = JSON.stringify({ id: e.id, run_id: e.runId, seq: e.seq, type: e.type, from_path: e.from, to_path: e.to, causation_id: e.causationId, trace: e.trace, time: e.time });
    return `${head.slice(0, -1)},"payload":${payloadJsonOf(e)}}`;
  });
  return `[${rows.join(',')}]`;
}

/**
 * Commits of many runs in ONE statement: each run's row is updated only where the committing
 * node still owns it (the fence), with its node states and usage when the commit changes them,
 * and only those runs' events and checkpoints are inserted; the statement answers with the runs it
 * updated. Append-only: nothing is read first, a retried event id or step is skipped (so one run's
 * retried commit never fails the others' in its group).
 */
const GROUP_SQL = `with b as (
    select * from jsonb_to_recordset($1::jsonb) as b(run_id text, owner text, max_seq int, nodes jsonb, usage jsonb)
  ), r as (
    update runs set updated_at = $2::timestamptz, last_seq = greatest(runs.last_seq, b.max_seq),
      nodes = coalesce(b.nodes, runs.nodes), usage = coalesce(b.usage, runs.usage)
    from b where runs.id = b.run_id and runs.owner = b.owner
    returning runs.id
  ), ins as (
    insert into events (id, run_id, seq, type, from_path, to_path, causation_id, payload, trace, time)
    select ${EVENT_COLUMNS} from ${EVENT_ROWS('$3')}
    where v.run_id in (select id from r)
    on conflict (id) do nothing
    returning 1
  ), cp as (
    insert into checkpoints (run_id, step, seq, node, graph_version, state, size_bytes, created_at)
    select c.run_id, c.step, c.seq, c.node, c.graph_version, c.state, c.size_bytes, $2::timestamptz
    from jsonb_to_recordset($4::jsonb) as c(run_id text, step int, seq int, node text, graph_version text, state jsonb, size_bytes int)
    where c.run_id in (select id from r)
    on conflict (run_id, step) do nothing
    returning 1
  ) select id from r`;

/** What a grouped commit may carry besides events: node states, usage, checkpoints (each at its seq). */
export interface GroupExtra {
  nodes?: unknown;
  usage?: unknown;
  checkpoints?: ReadonlyArray<{ step: number; seq: number; node: string | null; graphVersion: string; state: unknown }>;
}

interface Pending {
  runId: string;
  owner: string;
  events: Envelope[];
  extra: GroupExtra;
  resolve: () => void;
  reject: (e: unknown) => void;
}

const DEADLOCK = '40P01';

/**
 * Group commit of hosted runs' commits that only move them on (events, node states, usage,
 * checkpoints; fenced by owner: nearly all of a run's commits). While `maxInFlight` statements are in flight, further appends wait and then go
 * together in one statement: one round trip, one WAL flush for all of them. With nothing in
 * flight an append goes at once, so a lone run waits for no one. A run's journal appends one
 * batch at a time, so a run is in at most one statement; rows are locked in run-id order, and a
 * deadlock with another multi-row writer (lease renewal) is retried (the statement is idempotent).
 */
export class GroupAppend {
  private pending: Pending[] = [];
  private inFlight = 0;

  constructor(
    private readonly raw: RawQuery,
    private readonly maxInFlight: number,
  ) {}

  append(runId: string, owner: string, events: Envelope[], extra: GroupExtra = {}): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ runId, owner, events, extra, resolve, reject });
      if (this.inFlight < this.maxInFlight) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    // One statement per run at most: a second append of a run already taken waits for the next.
    const taken = new Set<string>();
    const group: Pending[] = [];
    const rest: Pending[] = [];
    for (const p of this.pending) {
      (taken.has(p.runId) ? rest : group).push(p);
      taken.add(p.runId);
    }
    this.pending = rest;
    if (!group.length) return;
    this.inFlight++;
    try {
      group.sort((a, b) => (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0));
      const runs = JSON.stringify(
        group.map((p) => ({ run_id: p.runId, owner: p.owner, max_seq: p.events.reduce((m, e) => Math.max(m, e.seq), 0), nodes: p.extra.nodes ?? null, usage: p.extra.usage ?? null })),
      );
      const events = eventsJson(group.flatMap((p) => p.events));
      const checkpoints = checkpointsJson(group);
      let rows: Array<Record<string, unknown>> | undefined;
      for (let attempt = 1; !rows; attempt++) {
        try {
          rows = await this.raw('ao_commit_group', GROUP_SQL, [runs, new Date().toISOString(), events, checkpoints]);
        } catch (e) {
          if (attempt < 5 && (e as { code?: string }).code === DEADLOCK) continue;
          throw e;
        }
      }
      const updated = new Set(rows.map((r) => r.id as string));
      for (const p of group) {
        if (updated.has(p.runId)) p.resolve();
        else p.reject(new AoError('AO_LEASE_LOST', `node ${p.owner} no longer holds run ${p.runId}: another node took it over`, { details: { runId: p.runId } }));
      }
    } catch (e) {
      for (const p of group) p.reject(e);
    } finally {
      this.inFlight--;
      if (this.pending.length && this.inFlight < this.maxInFlight) void this.flush();
    }
  }
}

/** The checkpoints of a group as the JSON array its statement reads: each state serialised once (its size is that text's length). */
function checkpointsJson(group: readonly Pending[]): string {
  const parts: string[] = [];
  for (const p of group) {
    for (const c of p.extra.checkpoints ?? []) {
      const state = JSON.stringify(c.state);
      const head = JSON.stringify({ run_id: p.runId, step: c.step, seq: c.seq, node: c.node, graph_version: c.graphVersion, size_bytes: Buffer.byteLength(state) });
      parts.push(`${head.slice(0, -1)},"state":${state}}`);
    }
  }
  return `[${parts.join(',')}]`;
}
