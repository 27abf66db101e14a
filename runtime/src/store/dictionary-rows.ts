import { AoError } from '@ao/graphs';
import { dictionaryRowsOf, inflateText, rowText } from './journal-zip.js';
import type { RowsText } from './journal-zip.js';

/** A journal row as a dictionary read gets it: its text as stored (JSON, or deflated as base64). */
export interface StoredDictionaryRow {
  seq: number;
  body: string | null;
  turns: string | null;
  z: string | null;
  zt: string | null;
}

/** One row's text in a dictionary (its body, and its records after a newline). */
export interface DictionaryPart {
  seq: number;
  text: string;
}

/** The rows of `parts` from seq `from` to `to` as the text a row deflated against them names. */
export function partsText(from: number, to: number, parts: readonly DictionaryPart[]): RowsText {
  const texts: string[] = [];
  for (const p of parts) if (p.seq >= from && p.seq <= to) texts.push(p.text);
  return { from, to, text: texts.join('\n') };
}

/**
 * The texts of a run's rows read from seq `from` on, in seq order (log format 4, ./journal-zip.ts).
 * A row deflated against the rows before it in the same read (kind 3: a dictionary row, which
 * names its run's dictionary rows gathered so far) is inflated against their texts as this read
 * made them, in one pass; a row naming other rows (written by an earlier writer of the run, after
 * its dictionary was forgotten) gets them from `other`, at most `3 - depth` levels deep.
 */
export async function dictionaryParts(
  runId: string,
  from: number,
  found: readonly StoredDictionaryRow[],
  other: (from: number, to: number) => Promise<RowsText>,
  depth: number,
): Promise<DictionaryPart[]> {
  const parts: DictionaryPart[] = [];
  for (const f of found) {
    const where = `journal row at seq ${f.seq} of run ${runId}`;
    const z = f.z ? Buffer.from(f.z, 'base64') : undefined;
    const zt = f.zt ? Buffer.from(f.zt, 'base64') : undefined;
    if (!z) {
      parts.push({ seq: f.seq, text: rowText(f.body ?? '', f.turns ?? undefined) });
      continue;
    }
    const named = dictionaryRowsOf(z);
    let dict: RowsText | undefined;
    if (named && named.from === from && named.to < f.seq) dict = partsText(named.from, named.to, parts);
    else if (named) {
      if (depth >= 3) throw new AoError('AO_STORE_CORRUPT', `${where} is part of a chain of dictionaries too long to be a log's`);
      dict = await other(named.from, named.to);
    }
    parts.push({ seq: f.seq, text: rowText(inflateText(z, dict, where), zt ? inflateText(zt, dict, where) : undefined) });
  }
  return parts;
}
