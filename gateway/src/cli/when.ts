import { AoError } from '@ao/graphs';

const UNITS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `30m`, `24h`, `7d` in milliseconds. */
export function parseDuration(text: string, field = 'since'): number {
  const m = /^(\d+(?:\.\d+)?)([smhd])$/.exec(text.trim());
  if (!m) throw new AoError('AO_VALIDATION', `--${field} must be a duration such as 90s, 30m, 24h or 7d (got ${JSON.stringify(text)})`, { field });
  return Number(m[1]) * UNITS[m[2]!]!;
}

/**
 * An instant given on the command line, as ISO 8601: a duration back from `now` (`30m`, `24h`,
 * `7d`), or a date or date-time (`2026-12-04`, `2026-12-04T18:00:00Z`; without an offset, UTC).
 */
export function parseInstant(text: string, field: string, now = Date.now()): string {
  if (/^\d+(?:\.\d+)?[smhd]$/.test(text.trim())) return new Date(now - parseDuration(text, field)).toISOString();
  const t = text.trim();
  const utc = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$/.test(t) ? `${t}${t.includes('T') ? 'Z' : 'T00:00:00Z'}` : t;
  const ms = /^\d{4}-\d{2}-\d{2}/.test(utc) ? Date.parse(utc) : NaN;
  if (Number.isNaN(ms))
    throw new AoError(
      'AO_VALIDATION',
      `--${field} must be a duration back from now (30m, 24h, 7d) or a date (2026-12-04, 2026-12-04T18:00:00Z); got ${JSON.stringify(text)}`,
      { field },
    );
  return new Date(ms).toISOString();
}
