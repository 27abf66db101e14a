import type { EngineContext } from './context.js';

/** Apply every graph's retention policy to its finished runs. */
export async function sweep(ctx: EngineContext): Promise<{ runs: number; checkpoints: number }> {
  const total = { runs: 0, checkpoints: 0 };
  for (const g of ctx.graphs.list()) {
    if (g.retention.keepCheckpoints === undefined && g.retention.ttlSec === undefined) continue;
    const r = await ctx.store.sweep(g.name, g.retention);
    total.runs += r.runs;
    total.checkpoints += r.checkpoints;
  }
  return total;
}
