import { createHash } from 'node:crypto';
import { AoError } from '@ao/graphs';

/**
 * Content stored once per run (issue 22). A string of at least {@link CONTENT_MIN_CHARS} characters
 * (`AO_CONTENT_MIN_BYTES`; it counts the string's JSON text)
 * in an envelope's payload or a checkpoint's state (a prompt message, a model's answer, a node's
 * output, a tool's result) is written once to the run's `contents` rows under its hash, and
 * wherever it appears again (the next request's history, the node's output, the next node's
 * context, the checkpoint) the row holds a reference: the string `MARK + hash`. So an agent loop
 * whose every request carries the whole conversation stores each message once, not once per
 * request. Reads splice the content back: the API, the CLI and replay see whole envelopes.
 *
 * Both directions work on JSON text, not objects: the writer scans the JSON it was going to store
 * anyway, the reader splices before it parses. A short string that happens to start with MARK
 * (U+E000, a private-use character) is written with MARK doubled, so it is never taken for a
 * reference.
 */
export const CONTENT_MIN_CHARS = 65_536;
const MARK = '\uE000';
const MARK_CODE = 0xe000;
/** A reference in stored JSON text, or an escaped MARK: `"` MARK (MARK | 22-char hash `"`). */
const REF = /"\uE000(\uE000|[A-Za-z0-9_-]{22}")/g;

/** The hash a content is stored under: 128 bits of sha256 of its JSON-escaped text, base64url. */
function hashOf(literal: string): string {
  return createHash('sha256').update(literal).digest('base64url').slice(0, 22);
}

/** One content row, as the insert statements read them: `body` is the string's JSON-escaped text. */
export interface ContentRow {
  run_id: string;
  hash: string;
  body: string;
}

/** What one commit of a run stores by reference: the contents it writes, and which are new to this process. */
export class ContentPacker {
  /** Contents this commit writes (hash -> JSON-escaped text), unless known to be stored already. */
  readonly fresh = new Map<string, string>();

  constructor(
    readonly runId: string,
    private readonly known: ReadonlySet<string> | undefined,
    private readonly min = CONTENT_MIN_CHARS,
  ) {}

  /** `json` with each long string literal replaced by a reference (and short ones starting with MARK escaped). */
  readonly pack = (json: string): string => {
    // Most payloads hold no string that long and no mark: nothing to scan.
    if (json.length < this.min && !json.includes(MARK)) return json;
    let out = '';
    let last = 0;
    let open = json.indexOf('"');
    while (open !== -1) {
      let close = open + 1;
      for (;;) {
        close = json.indexOf('"', close);
        let backslashes = 0;
        while (json.charCodeAt(close - 1 - backslashes) === 92) backslashes++;
        if (backslashes % 2 === 0) break;
        close++;
      }
      if (close - open - 1 >= this.min) {
        const literal = json.slice(open + 1, close);
        const hash = hashOf(literal);
        if (!this.known?.has(hash)) this.fresh.set(hash, literal);
        out += `${json.slice(last, open + 1)}${MARK}${hash}`;
        last = close;
      } else if (json.charCodeAt(open + 1) === MARK_CODE) {
        out += `${json.slice(last, open + 1)}${MARK}`;
        last = open + 1;
      }
      open = json.indexOf('"', close + 1);
    }
    return last === 0 ? json : out + json.slice(last);
  };

  /** The content rows to write with the commit, as JSON array elements (no brackets), or '' for none. */
  rowsJson(): string {
    const rows: string[] = [];
    for (const [hash, literal] of this.fresh) rows.push(`{"run_id":${JSON.stringify(this.runId)},"hash":"${hash}","body":${JSON.stringify(literal)}}`);
    return rows.join(',');
  }
}

/** The hashes a stored JSON text references. */
export function refsIn(text: string): string[] {
  if (!text.includes(MARK)) return [];
  const out: string[] = [];
  for (const m of text.matchAll(REF)) if (m[1] !== MARK) out.push(m[1]!.slice(0, 22));
  return out;
}

/** A stored JSON text with its references replaced by their contents (and escaped MARKs restored). */
export function resolveRefs(text: string, content: (hash: string) => string | undefined, where: string): string {
  if (!text.includes(MARK)) return text;
  return text.replace(REF, (_m, g: string) => {
    if (g === MARK) return `"${MARK}`;
    const body = content(g.slice(0, 22));
    if (body === undefined) throw new AoError('AO_STORE_CORRUPT', `${where} references content ${g.slice(0, 22)} that the store does not hold`);
    return `"${body}"`;
  });
}

/**
 * Which contents this process knows each run has stored (so a commit does not send them again),
 * for the most recent runs. Forgetting is harmless: a content sent again is skipped by its key.
 * A hash is added only once the commit that wrote it has landed.
 */
export class KnownContents {
  private readonly runs = new Map<string, Set<string>>();

  constructor(private readonly maxRuns = 2_000) {}

  get(runId: string): ReadonlySet<string> | undefined {
    return this.runs.get(runId);
  }

  add(runId: string, hashes: Iterable<string>): void {
    let set = this.runs.get(runId);
    if (!set) {
      if (this.runs.size >= this.maxRuns) this.runs.delete(this.runs.keys().next().value!);
      set = new Set();
      this.runs.set(runId, set);
    }
    for (const h of hashes) set.add(h);
  }
}
