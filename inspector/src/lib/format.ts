/** `1234567` -> `1,234,567`; money with 4 decimals; seconds with one. */
export function amount(v: number, unit: string): string {
  if (unit === '$') return `$${v.toFixed(4)}`;
  if (unit === 's') return `${v.toFixed(1)} s`;
  return Math.round(v).toLocaleString('en-US');
}

/** A duration in ms as `850 ms`, `12.3 s`, `4 m 05 s`. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} m ${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')} s`;
}

export function since(start: string | null, end: string | null, now: number): string {
  if (!start) return '–';
  return duration((end ? Date.parse(end) : now) - Date.parse(start));
}

/** A graph's budget for people: `20,000 tokens · 120 s wall clock · stripe_refund ×1`. */
export function budgetText(b: { tokens?: number; tools?: number; usd?: number; wallClockSec?: number; perTool?: Record<string, number> }): string {
  const parts = [
    b.tokens !== undefined ? `${b.tokens.toLocaleString('en-US')} tokens` : '',
    b.tools !== undefined ? `${b.tools.toLocaleString('en-US')} tool calls` : '',
    b.usd !== undefined ? `$${b.usd}` : '',
    b.wallClockSec !== undefined ? `${b.wallClockSec} s wall clock` : '',
    ...Object.entries(b.perTool ?? {}).map(([tool, cap]) => `${tool} ×${cap}`),
  ].filter(Boolean);
  return parts.length ? parts.join(' · ') : 'no limits';
}

export const shortId = (id: string): string => id.slice(0, 8);

export function clock(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/**
 * What an event's secrets look like, for a note beside its JSON: tool results marked secret read
 * as handles (`secret:` and 32 hex digits; the value is kept encrypted by the server and never sent
 * here), secret arguments written literally read `[redacted]`, and secrets a server without a key
 * could not keep read `[secret not kept: …]`. Empty when the event holds none.
 */
export function secretNote(text: string): string {
  const handles = new Set(text.match(/secret:[0-9a-f]{32}/g) ?? []).size;
  const redacted = text.split('[redacted]').length - 1;
  const dropped = text.split('[secret not kept').length - 1;
  const parts = [
    handles ? `${handles} secret ${handles === 1 ? 'value' : 'values'} shown as a handle (secret:…), kept encrypted on the server` : '',
    redacted ? `${redacted} secret ${redacted === 1 ? 'argument' : 'arguments'} redacted` : '',
    dropped ? `${dropped} secret ${dropped === 1 ? 'value' : 'values'} not kept (the server has no AO_SECRET_KEY)` : '',
  ].filter(Boolean);
  return parts.join('; ');
}
