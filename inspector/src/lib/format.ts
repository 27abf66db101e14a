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

export const shortId = (id: string): string => id.slice(0, 8);

export function clock(iso: string): string {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}
