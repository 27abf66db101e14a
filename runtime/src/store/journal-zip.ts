import { crc32, deflateRawSync, inflateRawSync } from 'node:zlib';
import { AoError } from '@ao/graphs';

/**
 * Journal rows, deflated (log format 4, issue 22). Postgres compresses a row only past about 2 KB
 * (`toast_tuple_target` cannot lower that), and a commit of an agent's turn is below it: a model
 * request's envelopes with their budget's, or a tool's result with the next request's, each with
 * the same keys, paths and field names. So the store deflates a row's body and its turn records
 * itself (each on its own: a resume reads the records alone), with a preset dictionary:
 *
 * - {@link BASE_DICTIONARY}: the text every log repeats (envelope types, payload fields). Part
 *   of the format: a row written with it is read with it, so it never changes (a new dictionary
 *   is a new kind byte).
 * - and, past it, the text of the first rows of the same run (their bodies and records as
 *   written, before deflating; at least {@link DICTIONARY_BYTES} of them, or
 *   {@link DICTIONARY_ROWS} rows): the run's own names (node, actor, tool, model), the shapes of
 *   its commits and the text its steps repeat, which no fixed dictionary knows. Those rows are
 *   deflated against the ones before them (kind 3; the run's first row against the base
 *   dictionary alone), so reading a row takes one read of at most a few dozen others, whose text
 *   a reader keeps.
 *
 * A deflated text is `kind` (1 byte: 1 the base dictionary alone, 2 with rows' text, 3 with the
 * text of the run's dictionary rows before it, 4 with rows' text as 2), for kinds 2 to 4 the seqs
 * of the first and the last of those rows (every row of the run between them, in seq order) and
 * the CRC-32 of their text (4 bytes each, big-endian), then the raw deflate stream. The CRC makes
 * a row read against any other text than the one it was written against (which raw deflate would
 * not notice) fail loudly. Kind 2's dictionary is the last 32 KiB of the base dictionary and the
 * rows' text; kinds 3 and 4 (issue 18, 2026-12-06) take its last {@link TAIL} bytes: the most
 * recent text is what later rows repeat (W4: 221 B a row against 8 KiB, 217 against 20 KiB), and
 * zlib sets a preset dictionary up byte by byte for every row. A reader before kinds 3 and 4
 * refuses them by name.
 */

const BASE_PARTS = [
  '"traceparent":"00-',
  '"run.started","supervisor",',
  '"run.finished","supervisor",',
  '"node.start","supervisor","supervisor/',
  '"node.completed","supervisor/',
  '"node.failed","supervisor/',
  '"llm.failed","llm/',
  '"budget.denied","supervisor/budget","supervisor/',
  '{"node":"',
  '"output":{"text":"',
  '"error":{"code":"AO_',
  '"message":"',
  '"status":"succeeded"',
  '"attempt":1',
  '"startedAt":"',
  '"finishedAt":"',
  '"ledger":{"used":{"usd":0,"tools":',
  '"perTool":{',
  '"byNode":{',
  '"reserved":{}',
  '"inputTokens":',
  '"totalTokens":',
  '"llmCalls":',
  '"toolCalls":',
  '{"role":"system","content":"',
  '{"role":"user","content":"',
  '[{"a":"supervisor/',
  '"s":{"start":"',
  '"turn":',
  '"n":',
  '"seq":',
  '"q":',
  '"k":',
  '"m":[',
  '{"role":"assistant","content":"',
  '"toolCalls":[{"id":"',
  '"arguments":{',
  '{"t":0,"id":"',
  '"c":4000}',
  '"u":[{"name":"',
  '"args":{',
  '"ok":true,"result":',
  '"ok":false,"error":',
  '"tool.call","supervisor/',
  '"name":"',
  '"hash":"',
  '"tool.result","tool/',
  '[[["result"],["u",0,0]]]',
  '"budget.settle","supervisor/',
  '"supervisor/budget",',
  '{"key":"supervisor/',
  '"tokens":0,"usd":0,"tool":"',
  '"budget.request","supervisor/',
  '{"kind":"tool","key":"supervisor/',
  '{"kind":"llm","key":"supervisor/',
  '"actor":"supervisor/',
  '"promptTokens":',
  '"model":"',
  '"budget.granted","supervisor/budget","supervisor/',
  '"reservation":{"node":"',
  '"llm.request","supervisor/',
  '"profile":"default"',
  '"maxTokens":',
  '"messages":0,"tools":[',
  '[[["messages"],["m",0]]]',
  '"llm.response","llm/',
  '"content":"',
  '"usage":{"inputTokens":',
  '"outputTokens":',
  '"finishReason":"stop"}',
  '"finishReason":"tool_calls"}',
];
/** The preset dictionary of format 4's kind 1 and 2 (never changed: see above). */
export const BASE_DICTIONARY = Buffer.from(BASE_PARTS.join(''), 'utf8');

/** The head of a text deflated against rows: kind, first seq, last seq, CRC-32. */
const HEAD = 13;
/** deflate looks back 32 KiB: what a dictionary may hold. */
const WINDOW = 32 * 1024;
/** What kinds 3 and 4 take of their dictionary: its last 8 KiB. */
export const TAIL = 8 * 1024;
/**
 * A run's first rows are its dictionary once their text reaches this many bytes (4 KiB until
 * 2026-12-06: a W4 loop's first rows then held its start node alone, not the text its later
 * steps repeat) or once there are {@link DICTIONARY_ROWS} of them.
 */
export const DICTIONARY_BYTES = 16_384;
/** At most this many rows are a run's dictionary (each is deflated against those before it). */
export const DICTIONARY_ROWS = 32;

/** The rows later rows of a run are deflated against: the first and last seq, and their text (each row's, joined by newlines). */
export interface RowsText {
  from: number;
  to: number;
  text: string;
}

/** A row's text as a dictionary holds it: its body, and its records after a newline. */
export const rowText = (body: string, turns: string | undefined): string => (turns === undefined ? body : `${body}\n${turns}`);

/** Each dictionary's bytes and CRC, made once (a run's rows are deflated and read against the same one). */
const made = new WeakMap<RowsText, { bytes: Buffer; tail: Buffer; crc: number }>();

function madeOf(rows: RowsText): { bytes: Buffer; tail: Buffer; crc: number } {
  let m = made.get(rows);
  if (!m) {
    const both = Buffer.concat([BASE_DICTIONARY, Buffer.from(rows.text, 'utf8')]);
    const last = (n: number) => (both.length > n ? both.subarray(both.length - n) : both);
    m = { bytes: last(WINDOW), tail: last(TAIL), crc: crc32(rows.text) };
    made.set(rows, m);
  }
  return m;
}

const dictionary = (rows: RowsText | undefined, kind: number): Buffer => (!rows ? BASE_DICTIONARY : kind === 2 ? madeOf(rows).bytes : madeOf(rows).tail);

/**
 * `text` deflated, against the base dictionary and (if given) a run's first rows, as `kind` (3: the
 * text is of a row that will be one of the run's dictionary rows itself; 2 is written no more).
 */
export function deflateText(text: string, rows?: RowsText, kind: 2 | 3 | 4 = 4): Buffer {
  const body = deflateRawSync(Buffer.from(text, 'utf8'), { dictionary: dictionary(rows, kind) });
  if (!rows) return Buffer.concat([Buffer.of(1), body]);
  const head = Buffer.alloc(HEAD);
  head[0] = kind;
  head.writeUInt32BE(rows.from, 1);
  head.writeUInt32BE(rows.to, 5);
  head.writeUInt32BE(madeOf(rows).crc, 9);
  return Buffer.concat([head, body]);
}

/** The seqs of the rows a deflated text was deflated against, if any. */
export function dictionaryRowsOf(z: Buffer): { from: number; to: number } | undefined {
  if ((z[0] === 2 || z[0] === 3 || z[0] === 4) && z.length >= HEAD) return { from: z.readUInt32BE(1), to: z.readUInt32BE(5) };
  return undefined;
}

/** A deflated text back; `rows` are the rows it names (see {@link dictionaryRowsOf}), read by the caller. */
export function inflateText(z: Buffer, rows: RowsText | undefined, where: string): string {
  const fail = (why: string, cause?: unknown) => new AoError('AO_STORE_CORRUPT', `${where} cannot be read: ${why}`, cause ? { cause } : {});
  const kind = z[0];
  if (kind !== 1 && kind !== 2 && kind !== 3 && kind !== 4) throw fail(`its deflated text is of kind ${String(kind)} (this code reads kinds 1 to 4)`);
  if (kind !== 1) {
    const named = dictionaryRowsOf(z);
    if (!named || !rows || rows.from !== named.from || rows.to !== named.to)
      throw fail(`it was deflated against the rows at seqs ${named ? `${named.from}-${named.to}` : '?'}, which were not given`);
    if (madeOf(rows).crc !== z.readUInt32BE(9)) throw fail(`it was deflated against another text than the rows at seqs ${rows.from}-${rows.to} hold`);
  }
  try {
    return inflateRawSync(z.subarray(kind === 1 ? 1 : HEAD), { dictionary: dictionary(kind === 1 ? undefined : rows, kind) }).toString('utf8');
  } catch (e) {
    throw fail('its deflated text is damaged', e);
  }
}

/** A run's dictionary as its writer builds it: its first rows, until their text is long enough. */
interface Building {
  from: number;
  to: number;
  texts: string[];
  bytes: number;
  /** The seq after the last row's last: the next row of the dictionary must start there. */
  next: number;
  /** The rows gathered so far, as the next one is deflated against (kind 3). */
  sofar?: RowsText;
  done?: RowsText;
}

/**
 * The dictionary of each recent run, as this process wrote its rows (it is the rows' text, not
 * read back). A run this process does not know starts one with its next row (forgetting costs a
 * few rows deflated less well). A commit that failed forgets its run's: its row may or may not
 * be stored, and a dictionary is every row between its first and last. For the same reason a row
 * that lands after a gap (a row of the run this process has not seen land, or commits landing out
 * of seq order) ends the run's dictionary: a dictionary is gathered from a run's first row (seq 1)
 * only, so a run taken over from another process deflates its rows against the base alone.
 */
export class RowDictionaries {
  private readonly runs = new Map<string, Building>();

  constructor(private readonly maxRuns = 2_000) {}

  get(runId: string): RowsText | undefined {
    return this.runs.get(runId)?.done;
  }

  /** The rows of the run's dictionary that landed so far, while it is gathered (the next one is deflated against them). */
  gathered(runId: string): RowsText | undefined {
    const b = this.runs.get(runId);
    if (!b || b.done || !b.texts.length) return undefined;
    b.sofar ??= { from: b.from, to: b.to, text: b.texts.join('\n') };
    return b.sofar;
  }

  /** The run's next row (as written, deflated against the dictionary rows before it), of seqs `seq` to `lastSeq`, landed. */
  add(runId: string, seq: number, text: string, lastSeq = seq): void {
    let b = this.runs.get(runId);
    if (b?.done) return;
    if (b && seq !== b.next) this.runs.delete(runId);
    // Only from the run's first row: a row this writer lands may have been skipped (`on conflict do
    // nothing`: the log already held a row with its first envelope, as a replay's inherited ones),
    // and a run's first rows are its own first commits.
    if ((!b || seq !== b.next) && seq !== 1) return;
    if (!b || seq !== b.next) {
      if (this.runs.size >= this.maxRuns) this.runs.delete(this.runs.keys().next().value!);
      b = { from: seq, to: seq, next: seq, texts: [], bytes: 0 };
      this.runs.set(runId, b);
    }
    b.to = seq;
    b.next = lastSeq + 1;
    b.texts.push(text);
    b.bytes += Buffer.byteLength(text);
    delete b.sofar;
    if (b.bytes >= DICTIONARY_BYTES || b.texts.length >= DICTIONARY_ROWS)
      this.runs.set(runId, { from: b.from, to: b.to, next: b.next, texts: [], bytes: b.bytes, done: { from: b.from, to: b.to, text: b.texts.join('\n') } });
  }

  forget(runId: string): void {
    this.runs.delete(runId);
  }
}

/** How one commit deflates its rows: against its runs' dictionaries, or (not built yet) against what is gathered, adding to them once it lands. */
export class RowZipper {
  private readonly added: Array<[string, number, string, number]> = [];

  constructor(private readonly known: RowDictionaries) {}

  /** A row's body and turn records (its envelopes of seqs `seq` to `lastSeq`), deflated: base64 (the insert statements read JSON). */
  zip(runId: string, seq: number, body: string, turns: string | undefined, lastSeq = seq): { z: string; zt: string | undefined } {
    const done = this.known.get(runId);
    const rows = done ?? this.known.gathered(runId);
    if (!done) this.added.push([runId, seq, rowText(body, turns), lastSeq]);
    const kind = done ? 4 : 3;
    return {
      z: deflateText(body, rows, kind).toString('base64'),
      zt: turns === undefined ? undefined : deflateText(turns, rows, kind).toString('base64'),
    };
  }

  /** The commit landed: its rows deflated against none are their runs' next dictionary rows. */
  landed(): void {
    for (const [runId, seq, text, lastSeq] of this.added) this.known.add(runId, seq, text, lastSeq);
  }
}
