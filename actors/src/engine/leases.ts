import { log, nodeIdInUse, systemClock } from '@ao/runtime';
import type { NodeIdentity } from '@ao/runtime';
import type { EngineContext } from './context.js';

/** The leases of the runs hosted here and this process's hold on its node id. */
export class Leases {
  /** Since when the bus has been unreachable (leases are not renewed after half a lease of it). */
  private unreachableSince: number | undefined;
  private lettingGo = false;
  /** Whether the last identity beat failed (logged once per outage). */
  private beatFailing = false;

  constructor(private readonly ctx: EngineContext) {}

  /** Renew the leases of hosted runs; act on cancel requests; stop hosting a run whose lease was lost. */
  async renew(): Promise<void> {
    const { ctx } = this;
    const ids = [...ctx.hosts.keys()];
    if (!ids.length) return;
    if (this.cutOff(ids.length)) return;
    const { renewed, cancelRequested, signalled } = await ctx.store.renewLeases(ctx.nodeId, ids, ctx.leaseMs);
    const kept = new Set(renewed);
    for (const id of ids) {
      const h = ctx.hosts.get(id);
      if (!h) continue;
      // Fencing: another node took the run over (our lease had expired): stop writing to it.
      if (!kept.has(id)) {
        log.warn('lost the lease of the run; stopped hosting it', { component: 'engine', nodeId: ctx.nodeId, runId: id });
        h.stop();
        ctx.hosts.delete(id);
      }
    }
    for (const id of cancelRequested) ctx.hosts.get(id)?.cancel('cancelled by request');
    for (const id of signalled)
      void ctx.hosts
        .get(id)
        ?.signals()
        .catch((e: unknown) => log.error("could not take the run's signals", { component: 'engine', nodeId: ctx.nodeId, runId: id, err: e }));
  }

  /**
   * Cut off from the bus for half a lease, this node can move none of its runs on (nothing it
   * writes reaches their actors or tasks): it stops renewing, so other nodes take them over, and
   * its own commits are fenced from then on. It sees which it lost when it renews again.
   */
  private cutOff(hosted: number): boolean {
    if (this.ctx.bus.reachable === false) {
      this.unreachableSince ??= systemClock.now(); // wall time, as the renewal loop's timer and the leases
      if (systemClock.now() - this.unreachableSince > this.ctx.leaseMs / 2) {
        if (!this.lettingGo)
          log.warn(`the bus is unreachable: not renewing the leases of ${hosted} run(s), so other nodes take them over`, {
            component: 'engine',
            nodeId: this.ctx.nodeId,
          });
        this.lettingGo = true;
        return true;
      }
    } else {
      this.unreachableSince = undefined;
      this.lettingGo = false;
    }
    return false;
  }

  /** Keep this node's id; if another process has taken it, stop at once (see `EngineOptions.identity`). */
  async beatIdentity(): Promise<void> {
    const { ctx } = this;
    const identity = ctx.o.identity;
    if (!identity || ctx.closed) return;
    let kept: boolean;
    try {
      kept = await identity.beat();
    } catch (e) {
      // The store is unreachable: leases cannot be renewed either. The id stays ours unless the
      // outage outlasts the lease and another process takes it; the next beat tells.
      if (!this.beatFailing) log.warn(`could not beat its node id (retrying): ${(e as Error).message}`, { component: 'engine', nodeId: ctx.nodeId });
      this.beatFailing = true;
      return;
    }
    this.beatFailing = false;
    if (!kept && !ctx.closed) await this.identityLost(identity);
  }

  /**
   * Another process holds this node's id: it has (or will have at once) every run and lease under
   * it. Stop every actor without writing or releasing anything (what they staged is dropped and
   * re-derived by the new holder), stop taking work, and tell the owner of the process.
   */
  private async identityLost(identity: NodeIdentity): Promise<void> {
    const { ctx } = this;
    ctx.lost = true;
    ctx.closed = true;
    for (const t of ctx.loops) clearInterval(t);
    ctx.subs.queue?.unsubscribe();
    ctx.subs.tasks?.unsubscribe();
    for (const h of ctx.hosts.values()) h.stop();
    ctx.hosts.clear();
    identity.abandon();
    const error = nodeIdInUse(ctx.nodeId, await identity.holder().catch(() => undefined), 'lost');
    log.error(`${error.code}: ${error.message}`, { component: 'engine', nodeId: ctx.nodeId });
    await ctx.tasks?.shutdown();
    ctx.system.shutdown();
    ctx.o.onIdentityLost?.(error);
  }
}
