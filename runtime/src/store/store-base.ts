import { and, asc, eq, gte, inArray, lte, or, sql } from 'drizzle-orm';
import { GroupAppend } from './group-append.js';
import type { RawQuery } from './group-append.js';
import { CONTENT_MIN_CHARS, KnownContents, refsIn } from './content-refs.js';
import { RequestHistories } from './request-history.js';
import type { JournalRow } from './journal-format.js';
import { dictionaryRowsOf, inflateText, RowDictionaries } from './journal-zip.js';
import type { RowsText } from './journal-zip.js';
import { dictionaryParts, partsText } from './dictionary-rows.js';
import type { DictionaryPart } from './dictionary-rows.js';
import { checkpoints, contents, journal } from './schema.js';
import { StateBases } from './row-zip.js';
import { KeyframeCache, stateTexts } from './state-texts.js';
import type { StoredState } from './state-texts.js';
import { BucketRows } from './buckets.js';
import type { BucketState, BucketUpdate } from '../llm/limits/mod.js';
import type { Db } from './store-rows.js';

/**
 * The base of `DrizzleStore` (drizzle-store.ts, through `StoreRuns`, `StoreReads` and
 * `StoreReader`): the connection and the per-process caches every part shares, and how stored
 * texts are read back: journal rows inflated against their dictionaries, checkpoint states
 * against their keyframes, and the contents they reference.
 */
export abstract class StoreBase {
  constructor(
    readonly kind: 'pglite' | 'postgres',
    protected readonly db: Db,
    protected readonly onClose: () => Promise<void>,
    protected readonly raw?: RawQuery,
    /** Statements of grouped appends in flight at once (PGlite has one connection: 1). */
    maxGroupsInFlight = 4,
    /** Strings at least this long are stored once per run, by reference (see content-refs.ts). */
    protected readonly contentMinChars = CONTENT_MIN_CHARS,
  ) {
    this.group = raw ? new GroupAppend(raw, maxGroupsInFlight) : undefined;
  }

  protected readonly group: GroupAppend | undefined;
  protected buckets: BucketRows | undefined;

  /** The LLM limits' bucket rows (see ./buckets.ts): one table every node of a cluster shares. */
  updateBuckets<T>(keys: readonly string[], fn: (states: ReadonlyMap<string, BucketState>, now: number) => BucketUpdate<T>): Promise<T> {
    this.buckets ??= new BucketRows(this.db);
    return this.buckets.update(keys, fn);
  }
  /** The contents this process knows each recent run has stored. */
  protected readonly known = new KnownContents();
  /** Each active run's agents' last requests, which their next ones continue. */
  protected readonly histories = new RequestHistories();
  /** Each active run's row its next rows are deflated against. */
  protected readonly dicts = new RowDictionaries();
  /** Each active run's latest checkpoint state its next ones are deflated against (see row-zip.ts). */
  protected readonly stateBases = new StateBases();
  /** Keyframes read back, which later states of their run are read against. */
  protected readonly keyframes = new KeyframeCache();
  /** Rows read back that others were deflated against (`run/seq`), their text: a few, recent. */
  protected readonly dictTexts = new Map<string, RowsText>();
  /** The rows read from a run's seq (`run/from`) up to `to`, each row's text: a run's dictionary rows, whose narrower ranges later rows name. */
  protected readonly dictParts = new Map<string, { to: number; parts: DictionaryPart[] }>();
  /** Outputs this process stored by reference (`run/ref` -> the output's JSON), recent: a run finished here is read back without reading its log. */
  protected readonly outputs = new Map<string, string>();

  /**
   * Format-4 rows inflated: body and turn records as JSON text (what was deflated). The rows they
   * were deflated against (their run's first rows) are read once and their text remembered. A row
   * given without its body (`z` null: a read of records alone) gets its records only.
   */
  protected async inflate<R extends Pick<JournalRow, 'runId' | 'seq' | 'body' | 'turns' | 'z' | 'zt'>>(rows: R[]): Promise<R[]> {
    if (!rows.some((r) => r.z || r.zt)) return rows;
    const zipped = rows.map((r) => ({ z: r.z ? Buffer.from(r.z, 'base64') : undefined, zt: r.zt ? Buffer.from(r.zt, 'base64') : undefined }));
    const dicts = new Map<string, RowsText>();
    // Both of a row's texts are deflated against the same rows; the widest range first (it serves the narrower ones of its run).
    const named = rows
      .map((r, i) => {
        const { z, zt } = zipped[i]!;
        return { runId: r.runId, range: z || zt ? dictionaryRowsOf((z ?? zt)!) : undefined };
      })
      .filter((n) => n.range !== undefined)
      .sort((a, b) => b.range!.to - a.range!.to);
    for (const { runId, range } of named) dicts.set(`${runId}/${range!.from}-${range!.to}`, await this.dictionaryOf(runId, range!.from, range!.to, 0));
    return rows.map((r, i) => {
      const { z, zt } = zipped[i]!;
      if (!z && !zt) return r;
      const named = dictionaryRowsOf((z ?? zt)!);
      const dict = named ? dicts.get(`${r.runId}/${named.from}-${named.to}`) : undefined;
      const where = `journal row at seq ${r.seq} of run ${r.runId}`;
      return { ...r, ...(z ? { body: inflateText(z, dict, where) } : {}), ...(zt ? { turns: inflateText(zt, dict, where) } : {}), z: null, zt: null };
    });
  }

  /**
   * The text of a run's rows from seq `from` to `to` (a dictionary of later rows), remembered; one
   * read of the widest range asked for from `from` serves the narrower ones (a run's dictionary
   * rows each name those before them).
   */
  protected async dictionaryOf(runId: string, from: number, to: number, depth: number): Promise<RowsText> {
    const key = `${runId}/${from}-${to}`;
    const known = this.dictTexts.get(key);
    if (known) return known;
    const wider = this.dictParts.get(`${runId}/${from}`);
    let parts = wider && wider.to >= to ? wider.parts : undefined;
    if (!parts) {
      const found = await this.db
        .select({
          seq: journal.seq,
          body: sql<string | null>`${journal.body}::text`,
          turns: sql<string | null>`${journal.turns}::text`,
          z: sql<string | null>`encode(${journal.packed}, 'base64')`,
          zt: sql<string | null>`encode(${journal.packedTurns}, 'base64')`,
        })
        .from(journal)
        .where(and(eq(journal.runId, runId), gte(journal.seq, from), lte(journal.seq, to)))
        .orderBy(asc(journal.seq));
      parts = await dictionaryParts(runId, from, found, (f, t) => this.dictionaryOf(runId, f, t, depth + 1), depth);
      if (this.dictParts.size >= 256) this.dictParts.delete(this.dictParts.keys().next().value!);
      this.dictParts.set(`${runId}/${from}`, { to, parts });
    }
    const rows = partsText(from, to, parts);
    if (this.dictTexts.size >= 256) this.dictTexts.delete(this.dictTexts.keys().next().value!);
    this.dictTexts.set(key, rows);
    return rows;
  }

  /** Checkpoint states as stored JSON text, each read against its keyframe where it has one (see state-texts.ts). */
  protected stateTexts(rows: readonly StoredState[]): Promise<string[]> {
    return stateTexts(
      rows,
      (keys) =>
        this.db
          .select({
            runId: checkpoints.runId,
            step: checkpoints.step,
            state: sql<string | null>`${checkpoints.state}::text`,
            zstate: sql<string | null>`encode(${checkpoints.zstate}, 'base64')`,
          })
          .from(checkpoints)
          .where(or(...keys.map((k) => and(eq(checkpoints.runId, k.runId), eq(checkpoints.step, k.step))))),
      this.keyframes,
    );
  }

  /** The contents these stored texts reference (by `run/hash`), or undefined when they reference none. */
  protected async contentsOf(texts: ReadonlyArray<{ runId: string; text: string }>): Promise<Map<string, string> | undefined> {
    const runIds = new Set<string>();
    const hashes = new Set<string>();
    for (const { runId, text } of texts) {
      for (const h of refsIn(text)) {
        runIds.add(runId);
        hashes.add(h);
      }
    }
    if (!hashes.size) return undefined;
    const found = await this.db
      .select({ runId: contents.runId, hash: contents.hash, body: contents.body })
      .from(contents)
      .where(and(inArray(contents.runId, [...runIds]), inArray(contents.hash, [...hashes])));
    return new Map(found.map((c) => [`${c.runId}/${c.hash}`, c.body]));
  }
}
