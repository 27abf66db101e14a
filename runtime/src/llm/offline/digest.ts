import { createHash } from 'node:crypto';
import { canonicalJson } from '@ao/graphs';

/** First 8 hex chars of the SHA-256 of `v`'s canonical JSON: equal values hash equal. */
export function hash8(v: unknown): string {
  return createHash('sha256')
    .update(canonicalJson(v) ?? 'undefined')
    .digest('hex')
    .slice(0, 8);
}

/** `text` on one line, cut to `max` chars with an ellipsis, so digests stay short. */
export function clip(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, Math.max(0, max - 1)).trimEnd()}…`;
}

/** A short, readable digest of any JSON value: `key: value` pairs for objects. */
export function digestValue(v: unknown, max = 80): string {
  if (v === undefined || v === null) return 'nothing';
  if (typeof v === 'string') return `"${clip(v, max - 2)}"`;
  if (typeof v !== 'object') return String(v);
  if (Array.isArray(v)) return `${v.length} item${v.length === 1 ? '' : 's'}`;
  const parts = Object.entries(v as Record<string, unknown>).map(
    ([k, x]) => `${k}: ${typeof x === 'object' && x !== null ? (Array.isArray(x) ? `[${x.length}]` : '{…}') : clip(String(x), 40)}`,
  );
  return clip(parts.join(', '), max);
}

/** The first `n` words of `text`, lower-cased, without punctuation. */
export function firstWords(text: string, n: number): string {
  return text
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s-]/gu, ' ')
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, n)
    .join(' ');
}
