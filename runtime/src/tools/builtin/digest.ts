import { createHash } from 'node:crypto';

/** First `n` hex chars of the SHA-256 of `text`: stable ids for offline stand-ins. */
export function hashHex(text: string, n = 8): string {
  return createHash('sha256').update(text).digest('hex').slice(0, n);
}
