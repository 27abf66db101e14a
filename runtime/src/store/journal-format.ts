import { AoError } from '@ao/graphs';
import { parseEnvelope, payloadJsonOf } from '../envelope/mod.js';
import type { Envelope } from '../envelope/mod.js';

/**
 * The event log's row format. Format 1 (the `events` table, up to migration 0006) was one row per
 * envelope; format 2 (the `journal` table) is one row per commit of a run: its envelopes in seq
 * order, in one compressed JSON body, with their ids beside it (so a start message is found by id
 * without reading the body). Migration 0007 rewrites format-1 rows as format-2 rows of one
 * envelope each, so a run journaled before it resumes and replays as before.
 */
export const JOURNAL_FORMAT = 2;

/**
 * One envelope in a row's body: `[type, from, to, causation, dtMs, payload, trace?, seq?]`.
 * - `causation`: null, the index in this row's `ids` of the envelope it answers, or its uuid.
 * - `dtMs`: milliseconds after the row's `time` (the first envelope's time).
 * - `trace`: left out (or `0` when `seq` follows) when equal to the previous envelope's; the
 *   first envelope's is null when left out.
 * - `seq`: left out when it is the previous envelope's plus one (the first's is the row's `seq`).
 */
type Packed = [string, string, string, string | number | null, number, unknown, (Envelope['trace'] | 0)?, number?];

/** The columns of a journal row, as the insert statements read them (snake case) and as rows come back. */
export interface JournalRowIn {
  id: string;
  run_id: string;
  seq: number;
  last_seq: number;
  format: number;
  ids: string[];
  time: string;
}

export interface JournalRow {
  runId: string;
  seq: number;
  lastSeq: number;
  format: number;
  ids: string[];
  time: string;
  body: unknown;
}

const sameTrace = (a: Envelope['trace'], b: Envelope['trace']) => a === b || (a !== null && b !== null && a.traceparent === b.traceparent && a.tracestate === b.tracestate);

/**
 * The rows of a commit's envelopes as the JSON array the insert statements read: one row per run
 * (a commit is one run's), envelopes in seq order, each payload's JSON reused from the journal's
 * check (`payloadJsonOf`), serialised once.
 */
export function journalRowsJson(envelopes: readonly Envelope[], pack: (json: string, env: Envelope) => string = (j) => j): string {
  return `[${journalRows(envelopes, pack).join(',')}]`;
}

/** The rows of {@link journalRowsJson}, each a JSON object's text; `pack` rewrites each payload's JSON (content references). */
export function journalRows(envelopes: readonly Envelope[], pack: (json: string, env: Envelope) => string = (j) => j): string[] {
  const byRun = new Map<string, Envelope[]>();
  for (const e of envelopes) {
    const list = byRun.get(e.runId);
    if (list) list.push(e);
    else byRun.set(e.runId, [e]);
  }
  const rows: string[] = [];
  for (const [runId, list] of byRun) {
    const sorted = list.length > 1 && list.some((e, i) => i > 0 && e.seq < list[i - 1]!.seq) ? [...list].sort((a, b) => a.seq - b.seq) : list;
    const first = sorted[0]!;
    const base = Date.parse(first.time);
    const index = new Map(sorted.map((e, i) => [e.id, i]));
    let trace: Envelope['trace'] = null;
    let seq = first.seq - 1;
    const body = sorted.map((e) => {
      const causation = e.causationId === null ? 'null' : (index.get(e.causationId) ?? JSON.stringify(e.causationId));
      let tail = '';
      const explicitSeq = e.seq !== seq + 1;
      if (!sameTrace(e.trace, trace)) tail = `,${JSON.stringify(e.trace)}`;
      else if (explicitSeq) tail = ',0';
      if (explicitSeq) tail += `,${e.seq}`;
      trace = e.trace;
      seq = e.seq;
      return `[${JSON.stringify(e.type)},${JSON.stringify(e.from)},${JSON.stringify(e.to)},${causation},${Date.parse(e.time) - base},${pack(payloadJsonOf(e), e)}${tail}]`;
    });
    const head: JournalRowIn = { id: first.id, run_id: runId, seq: first.seq, last_seq: sorted.at(-1)!.seq, format: JOURNAL_FORMAT, ids: sorted.map((e) => e.id), time: first.time };
    rows.push(`${JSON.stringify(head).slice(0, -1)},"body":[${body.join(',')}]}`);
  }
  return rows;
}

/** A journal row's envelopes, each validated (the store is a boundary), in seq order. */
export function unpackRow(row: JournalRow): Envelope[] {
  const fail = (why: string, cause?: unknown) => new AoError('AO_STORE_CORRUPT', `journal row at seq ${row.seq} of run ${row.runId} is not valid: ${why}`, { details: { runId: row.runId, seq: row.seq }, ...(cause ? { cause } : {}) });
  if (row.format !== JOURNAL_FORMAT) throw fail(`format ${row.format} (this code reads format ${JOURNAL_FORMAT})`);
  const body = typeof row.body === 'string' ? (JSON.parse(row.body) as unknown) : row.body;
  if (!Array.isArray(body) || body.length !== row.ids.length) throw fail('its body does not match its ids');
  const base = Date.parse(row.time);
  let trace: Envelope['trace'] = null;
  let seq = row.seq - 1;
  return body.map((p: unknown, i) => {
    if (!Array.isArray(p) || p.length < 6) throw fail(`envelope ${i} is not a packed envelope`);
    const [type, from, to, causation, dt, payload, t, s] = p as Packed;
    if (t !== undefined && t !== 0) trace = t;
    seq = s ?? seq + 1;
    const causationId = typeof causation === 'number' ? row.ids[causation] : causation;
    try {
      return parseEnvelope({ id: row.ids[i], runId: row.runId, seq, type, from, to, causationId, payload, trace, time: new Date(base + dt).toISOString() });
    } catch (e) {
      throw fail(`envelope ${i}`, e);
    }
  });
}

/** The envelopes of rows (in seq order) with `after` < seq <= `upTo`. */
export function unpackRows(rows: readonly JournalRow[], after = 0, upTo = Infinity): Envelope[] {
  const out: Envelope[] = [];
  for (const row of rows) for (const e of unpackRow(row)) if (e.seq > after && e.seq <= upTo) out.push(e);
  return out;
}
