import { beatIntervalMs, log } from '@ao/runtime';
import { release, within } from './context.js';
import type { EngineContext } from './context.js';

/** The periodic work of a node, each step a part's. */
export interface Loops {
  renew(): Promise<void>;
  claim(): Promise<void>;
  beat(): Promise<void>;
  beatIdentity(): Promise<void>;
  sweep(): Promise<unknown>;
}

/** Start the node's loops: lease renewal, claims, membership and identity beats, retention sweeps. */
export function startLoops(ctx: EngineContext, loops: Loops): void {
  const every = (ms: number, fn: () => Promise<void>) => {
    const t = setInterval(() => void fn().catch((e) => log.error('a periodic task failed', { component: 'engine', nodeId: ctx.nodeId, err: e })), ms);
    t.unref();
    ctx.loops.push(t);
  };
  every(Math.max(50, Math.floor(ctx.leaseMs / 3)), () => loops.renew());
  if (!ctx.o.passive) every(ctx.o.claimIntervalMs ?? Math.max(100, Math.floor(ctx.leaseMs / 2)), () => loops.claim());
  if (ctx.bus.membership && !ctx.o.passive) every(2_000, () => loops.beat());
  if (ctx.o.identity) every(beatIntervalMs(ctx.o.identity.staleMs), () => loops.beatIdentity());
  const sweepMs = ctx.o.sweepIntervalMs ?? 60_000;
  if (sweepMs > 0) every(sweepMs, () => loops.sweep().then(() => undefined));
}

/**
 * Stop hosting: stop every actor, then give up the leases so another node (or this one,
 * restarted) resumes the runs from their checkpoints at once. `claiming` gives the claim under way.
 */
export async function shutdown(ctx: EngineContext, claiming: () => Promise<void>): Promise<void> {
  if (ctx.closed) return;
  ctx.closed = true;
  for (const t of ctx.loops) clearInterval(t);
  ctx.subs.queue?.unsubscribe();
  ctx.subs.tasks?.unsubscribe();
  ctx.watch?.close();
  ctx.loadMeter.close();
  // Node tasks running here go back to the queue (another node runs them).
  await ctx.tasks?.shutdown();
  // Bounded: with the bus or the store down these could wait for ever, and a node told to stop must stop.
  await within(5_000, Promise.all([claiming(), ...ctx.taking]));
  if (!ctx.o.passive) await within(2_000, ctx.bus.membership?.leave(ctx.nodeId));
  const ids = [...ctx.hosts.keys()];
  // What the runs staged is committed before their actors stop (a model's answer is not paid for twice).
  await within(5_000, Promise.all([...ctx.hosts.values()].map((h) => h.journal.flush())));
  for (const h of ctx.hosts.values()) h.stop();
  ctx.system.shutdown();
  await within(5_000, Promise.all([...ctx.hosts.values()].map((h) => h.journal.flush())));
  ctx.hosts.clear();
  await release(ctx, ids);
  await within(5_000, ctx.o.identity?.release());
}
