import { AoError } from '@ao/graphs';
import { isoNow } from '../clock/mod.js';
import type { ContentPacker } from './content-refs.js';
import { journalRows } from './journal-format.js';
import { zipState } from './row-zip.js';
import type { StateZipper } from './row-zip.js';
import type { RowZipper } from './journal-zip.js';
import type { PackedPayload } from './journal-format.js';
import type { Envelope } from '../envelope/mod.js';

/** A statement run beneath drizzle by the adapter's client, prepared once per connection under `name`. */
export type RawQuery = (name: string, text: string, values: unknown[]) => Promise<Array<Record<string, unknown>>>;

/**
 * The journal rows of a JSON array built by `journalRowsJson` (one row per run of a commit), as a
 * row source. The body is read as `json`, so its text is stored as it was written.
 */
export const JOURNAL_ROW_TYPE =
  'v(id uuid, run_id text, seq int, last_seq int, format smallint, ids uuid[], time timestamptz, body json, turns json, z text, zt text)';
export const JOURNAL_ROWS = (param: string) => `json_to_recordset(${param}::json) as ${JOURNAL_ROW_TYPE}`;
export const JOURNAL_INSERT =
  "insert into journal (id, run_id, seq, last_seq, format, ids, time, body, turns, packed, packed_turns) select v.id, v.run_id, v.seq, v.last_seq, v.format, v.ids, v.time, v.body, v.turns, decode(v.z, 'base64'), decode(v.zt, 'base64')";

/** The insert of a commit's content rows (see `ContentPacker.rowsJson`), from a JSON array parameter; a content already stored is skipped. */
export const CONTENTS_INSERT_INTO = 'insert into contents (run_id, hash, body) select c.run_id, c.hash, c.body from';
export const CONTENTS_ROW_TYPE = 'c(run_id text, hash text, body text)';
export const CONTENTS_INSERT = (param: string) => `${CONTENTS_INSERT_INTO} json_to_recordset(${param}::json) as ${CONTENTS_ROW_TYPE}`;

/**
 * Commits of many runs in ONE statement: each run's row is updated only where the committing
 * node still owns it (the fence), with its node states and usage when the commit changes them,
 * and only those runs' journal rows (one a run), checkpoints and contents are inserted; the statement answers with the runs it
 * updated. Append-only: nothing is read first, a retried commit (its first envelope's id) or step is skipped (so one run's
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
    ${JOURNAL_INSERT} from ${JOURNAL_ROWS('$3')}
    where v.run_id in (select id from r)
    on conflict (id) do nothing
    returning 1
  ), cp as (
    insert into checkpoints (run_id, step, seq, node, graph_version, zstate, size_bytes, created_at)
    select c.run_id, c.step, c.seq, c.node, c.graph_version, decode(c.zstate, 'base64'), c.size_bytes, $2::timestamptz
    from json_to_recordset($4::json) as c(run_id text, step int, seq int, node text, graph_version text, zstate text, size_bytes int)
    where c.run_id in (select id from r)
    on conflict (run_id, step) do nothing
    returning 1
  ), ct as (
    ${CONTENTS_INSERT('$5')}
    where c.run_id in (select id from r)
    on conflict do nothing
    returning 1
  ) select id from r`;

/** What a grouped commit may carry besides events: node states, usage, checkpoints (each at its seq), and its contents stored by reference. */
export interface GroupExtra {
  nodes?: unknown;
  usage?: unknown;
  checkpoints?: ReadonlyArray<{ step: number; seq: number; node: string | null; graphVersion: string; state: unknown }>;
  contents?: ContentPacker;
  /** How each payload is stored (content references, request deltas, fields turn records hold); as it is by default. */
  pack?: (json: string, env: Envelope) => PackedPayload;
  /** The run's turn records of this commit (JSON), if any. */
  turns?: string;
  /** How its row is deflated (format 4), if it is. */
  zip?: RowZipper;
  /** How its checkpoint states are deflated (against its run's keyframe, see row-zip.ts); each alone by default. */
  states?: StateZipper;
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
        group.map((p) => ({
          run_id: p.runId,
          owner: p.owner,
          max_seq: p.events.reduce((m, e) => Math.max(m, e.seq), 0),
          nodes: p.extra.nodes ?? null,
          usage: p.extra.usage ?? null,
        })),
      );
      const events = `[${group.flatMap((p) => journalRows(p.events, p.extra.pack, () => p.extra.turns, p.extra.zip)).join(',')}]`;
      const checkpoints = checkpointsJson(group);
      const contents = `[${group
        .map((p) => p.extra.contents?.rowsJson() ?? '')
        .filter(Boolean)
        .join(',')}]`;
      let rows: Array<Record<string, unknown>> | undefined;
      for (let attempt = 1; !rows; attempt++) {
        try {
          rows = await this.raw('ao_commit_group', GROUP_SQL, [runs, isoNow(), events, checkpoints, contents]);
        } catch (e) {
          if (attempt < 5 && (e as { code?: string }).code === DEADLOCK) continue;
          throw e;
        }
      }
      const updated = new Set(rows.map((r) => r.id as string));
      for (const p of group) {
        if (updated.has(p.runId)) p.resolve();
        else
          p.reject(new AoError('AO_LEASE_LOST', `node ${p.owner} no longer holds run ${p.runId}: another node took it over`, { details: { runId: p.runId } }));
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
      const state = (p.extra.contents?.pack ?? String)(JSON.stringify(c.state));
      parts.push(
        JSON.stringify({
          run_id: p.runId,
          step: c.step,
          seq: c.seq,
          node: c.node,
          graph_version: c.graphVersion,
          size_bytes: Buffer.byteLength(state),
          zstate: (p.extra.states ? p.extra.states.zip(p.runId, c.step, state) : zipState(state)).toString('base64'),
        }),
      );
    }
  }
  return `[${parts.join(',')}]`;
}
