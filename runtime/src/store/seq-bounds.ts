/** Each run's highest `upTo` among refs (see `Store.eventsById`), or undefined when a ref has none. */
export function seqBounds(refs: ReadonlyArray<{ runId: string; upTo?: number }>): Map<string, number> | undefined {
  const bounds = new Map<string, number>();
  for (const r of refs) {
    if (r.upTo === undefined) return undefined;
    bounds.set(r.runId, Math.max(bounds.get(r.runId) ?? r.upTo, r.upTo));
  }
  return bounds;
}
