import { AoError } from '@ao/graphs';
import { parseEnvelope, payloadJsonOf } from '../envelope/mod.js';
import type { Envelope } from '../envelope/mod.js';
import type { RowZipper } from './journal-zip.js';
import { addedMessages } from './turns.js';
import { namesOriginal } from './shared-turns.js';
import type { StoredTurn } from './turns.js';

/**
 * The event log's row format. Format 1 (the `events` table, up to migration 0006) was one row per
 * envelope; format 2 (the `journal` table) is one row per commit of a run: its envelopes in seq
 * order, in one compressed JSON body, with their ids beside it (so a start message is found by id
 * without reading the body). Migration 0007 rewrites format-1 rows as format-2 rows of one
 * envelope each, so a run journaled before it resumes and replays as before.
 */
export const JOURNAL_FORMAT = 2;
/**
 * Format 3 (issue 22): a format-2 row whose payloads leave parts to its turn records (`turns`,
 * see ./turns.ts) or to other envelopes of the run (a packed envelope's `refs`). Written only by
 * rows that have either; a reader of format 2 alone refuses such a row rather than read payloads
 * without their parts.
 */
export const JOURNAL_FORMAT_TURNS = 3;
/**
 * Format 4 (issue 22): a format-3 row whose body and turn records are deflated, in the `packed`
 * and `packed_turns` columns (`body` and `turns` null; see ./journal-zip.ts). The store inflates
 * them before it reads the row as format 3.
 */
export const JOURNAL_FORMAT_ZIPPED = 4;
/**
 * Format 5 (issue 22): a format-3 or -4 row (written deflated, as 4) of a replay or fork some of
 * whose turn records name its original's records instead of holding the same messages again (see ./shared-turns.ts). The
 * store puts those back before it reads the row as format 3.
 */
export const JOURNAL_FORMAT_SHARED = 5;

/**
 * One envelope in a row's body: `[type, from, to, causation, dtMs, payload, trace?, seq?, refs?]`.
 * - `causation`: null, the index in this row's `ids` of the envelope it answers, or its uuid.
 * - `dtMs`: milliseconds after the row's `time` (the first envelope's time).
 * - `trace`: left out (or `0` when `seq` or `refs` follows) when equal to the previous envelope's;
 *   the first envelope's is null when left out.
 * - `seq`: left out (or null when `refs` follows) when it is the previous envelope's plus one
 *   (the first's is the row's `seq`).
 * - `refs`: parts of the payload held elsewhere, each `[path, ref]` with `0` at `path` in the
 *   payload: `["m", r]` the messages of the row's record r's request (rebuilt in seq order, see
 *   `rebuildRequests`), `["u", r, j]` the outcome of record r's tool call j, `["t", actor, n]`
 *   the first n tool calls of the actor's records (its output's `tools`), `["e", id, ...field]`
 *   the value at `field` of the payload of the run's envelope `id` (a node's output), `["o", run,
 *   q, j]` (format 5, a replay's) the outcome of tool call j of the record at seq q of the run it
 *   replays (see ./shared-turns.ts).
 */
type Packed = [string, string, string, string | number | null, number, unknown, (Envelope['trace'] | 0)?, (number | null)?, Refs?];
/** Where a part of a payload is held (see `Packed`). */
export type Ref = ['m', number] | ['u', number, number] | ['t', string, number] | ['e', string, ...string[]] | ['o', string, number, number];
/** Parts of a payload held elsewhere: each its path in the payload and where it is. */
export type Refs = Array<[string[], Ref]>;

/** `value` at `path` of a copy of `v` (the objects along the path copied, the rest shared). */
export function setAt(v: unknown, path: readonly string[], value: unknown): unknown {
  if (!path.length) return value;
  const o = { ...(v as Record<string, unknown>) };
  o[path[0]!] = setAt(o[path[0]!], path.slice(1), value);
  return o;
}

/** The parts of envelopes read back that other rows hold (`t` and `e` refs): the store puts them back (see `DrizzleStore.expand`). */
const pending = new WeakMap<Envelope, Refs>();
export const pendingRefs = (env: Envelope): Refs | undefined => pending.get(env);

/** A payload as a row stores it: its JSON, and the fields its turn records hold. */
export type PackedPayload = string | { json: string; refs: Refs };

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
  /** The row's turn records (format 3), as JSON text or parsed; null or absent without. */
  turns?: unknown;
  /** Format 4: the body and the turn records deflated (base64), until the store inflates them. */
  z?: string | null;
  zt?: string | null;
}

const sameTrace = (a: Envelope['trace'], b: Envelope['trace']) =>
  a === b || (a !== null && b !== null && a.traceparent === b.traceparent && a.tracestate === b.tracestate);

/**
 * The rows of a commit's envelopes as the JSON array the insert statements read: one row per run
 * (a commit is one run's), envelopes in seq order, each payload's JSON reused from the journal's
 * check (`payloadJsonOf`), serialised once.
 */
export function journalRowsJson(
  envelopes: readonly Envelope[],
  pack: (json: string, env: Envelope) => PackedPayload = (j) => j,
  turns?: (runId: string) => string | undefined,
  zip?: RowZipper,
): string {
  return `[${journalRows(envelopes, pack, turns, zip).join(',')}]`;
}

/**
 * The rows of {@link journalRowsJson}, each a JSON object's text; `pack` rewrites each payload's
 * JSON (content references, request deltas, fields held by turn records), `turns` gives a run's
 * turn records (the JSON of an array), which make its row format 3; with `zip`, the body and the
 * records are deflated (`z`, `zt`: base64) and the row is format 4.
 */
export function journalRows(
  envelopes: readonly Envelope[],
  pack: (json: string, env: Envelope) => PackedPayload = (j) => j,
  turns?: (runId: string) => string | undefined,
  zip?: RowZipper,
): string[] {
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
    let referring = false;
    const body = sorted.map((e) => {
      const causation = e.causationId === null ? 'null' : (index.get(e.causationId) ?? JSON.stringify(e.causationId));
      const packed = pack(payloadJsonOf(e), e);
      const refs = typeof packed === 'string' ? undefined : packed.refs;
      let tail = '';
      const explicitSeq = e.seq !== seq + 1;
      if (!sameTrace(e.trace, trace)) tail = `,${JSON.stringify(e.trace)}`;
      else if (explicitSeq || refs) tail = ',0';
      if (explicitSeq) tail += `,${e.seq}`;
      else if (refs) tail += ',null';
      if (refs) {
        tail += `,${JSON.stringify(refs)}`;
        referring = true;
      }
      trace = e.trace;
      seq = e.seq;
      return `[${JSON.stringify(e.type)},${JSON.stringify(e.from)},${JSON.stringify(e.to)},${causation},${Date.parse(e.time) - base},${typeof packed === 'string' ? packed : packed.json}${tail}]`;
    });
    const records = turns?.(runId);
    const head: JournalRowIn = {
      id: first.id,
      run_id: runId,
      seq: first.seq,
      last_seq: sorted.at(-1)!.seq,
      format: namesOriginal(records) ? JOURNAL_FORMAT_SHARED : zip ? JOURNAL_FORMAT_ZIPPED : records || referring ? JOURNAL_FORMAT_TURNS : JOURNAL_FORMAT,
      ids: sorted.map((e) => e.id),
      time: first.time,
    };
    const text = `[${body.join(',')}]`;
    if (zip) {
      // A row whose seqs have a gap (another commit's envelopes between them) ends its run's dictionary (see RowDictionaries).
      const { z, zt } = zip.zip(runId, first.seq, text, records, head.last_seq - first.seq + 1 === sorted.length ? head.last_seq : NaN);
      rows.push(`${JSON.stringify(head).slice(0, -1)},"z":"${z}"${zt ? `,"zt":"${zt}"` : ''}}`);
    } else rows.push(`${JSON.stringify(head).slice(0, -1)},"body":${text}${records ? `,"turns":${records}` : ''}}`);
  }
  return rows;
}

/** A row's turn records, parsed (none for a row without). */
export function turnsOf(row: Pick<JournalRow, 'turns'>): StoredTurn[] {
  const t = typeof row.turns === 'string' ? (JSON.parse(row.turns) as unknown) : row.turns;
  return Array.isArray(t) ? (t as StoredTurn[]) : [];
}

/**
 * A journal row's envelopes, each validated (the store is a boundary), in seq order. Fields its
 * turn records hold are put back: a tool call's outcome as it was, a request's messages as the
 * delta `{prev, keep, add}` on the actor's previous request, which `rebuildRequests` makes whole.
 */
export function unpackRow(row: JournalRow): Envelope[] {
  const fail = (why: string, cause?: unknown) =>
    new AoError('AO_STORE_CORRUPT', `journal row at seq ${row.seq} of run ${row.runId} is not valid: ${why}`, {
      details: { runId: row.runId, seq: row.seq },
      ...(cause ? { cause } : {}),
    });
  if (!Number.isInteger(row.format) || row.format < JOURNAL_FORMAT || row.format > JOURNAL_FORMAT_SHARED)
    throw fail(`format ${row.format} (this code reads formats ${JOURNAL_FORMAT} to ${JOURNAL_FORMAT_SHARED})`);
  // A format-4 row reaches here inflated (the store does it: it may need another row's text).
  if (row.body === null || row.body === undefined) throw fail('its body was not inflated');
  const body = typeof row.body === 'string' ? (JSON.parse(row.body) as unknown) : row.body;
  if (!Array.isArray(body) || body.length !== row.ids.length) throw fail('its body does not match its ids');
  const records = row.format !== JOURNAL_FORMAT ? turnsOf(row) : [];
  const base = Date.parse(row.time);
  let trace: Envelope['trace'] = null;
  let seq = row.seq - 1;
  return body.map((p: unknown, i) => {
    if (!Array.isArray(p) || p.length < 6) throw fail(`envelope ${i} is not a packed envelope`);
    const [type, from, to, causation, dt, stored, t, s, refs] = p as Packed;
    if (t !== undefined && t !== 0) trace = t;
    seq = s ?? seq + 1;
    const causationId = typeof causation === 'number' ? row.ids[causation] : causation;
    let payload = stored;
    const later: Refs = [];
    for (const [path, ref] of refs ?? []) {
      if (ref[0] === 't' || ref[0] === 'e' || ref[0] === 'o') {
        later.push([path, ref]);
        continue;
      }
      const r = records[ref[1]];
      if (!r) throw fail(`envelope ${i} refers to turn record ${ref[1]}, which the row does not hold`);
      if (!Array.isArray(r.m)) throw fail(`turn record ${ref[1]} names its original's, which was not put back`);
      if (ref[0] === 'm') payload = setAt(payload, path, { prev: r.a, keep: r.k, add: addedMessages(r) });
      else {
        const u = r.u?.[ref[2]];
        if (!u) throw fail(`envelope ${i} refers to tool call ${ref[2]} of turn record ${ref[1]}, which it does not hold`);
        payload = setAt(payload, path, u.result);
      }
    }
    let env: Envelope;
    try {
      env = parseEnvelope(
        { id: row.ids[i], runId: row.runId, seq, type, from, to, causationId, payload, trace, time: new Date(base + dt).toISOString() },
        { payload: 'later' },
      );
    } catch (e) {
      throw fail(`envelope ${i}`, e);
    }
    if (later.length) pending.set(env, later);
    return env;
  });
}

/** The envelopes of rows (in seq order) with `after` < seq <= `upTo`. */
export function unpackRows(rows: readonly JournalRow[], after = 0, upTo = Infinity): Envelope[] {
  const out: Envelope[] = [];
  for (const row of rows) for (const e of unpackRow(row)) if (e.seq > after && e.seq <= upTo) out.push(e);
  return out;
}
