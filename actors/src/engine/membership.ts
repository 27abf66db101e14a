import { isoNow, NODE_RUNS_LISTED } from '@ao/runtime';
import type { NodeInfo } from '@ao/runtime';
import type { EngineContext } from './context.js';

/** This node as the cluster lists it (GET /nodes): its process, its runs and tasks, its load. */
export function nodeInfo(ctx: EngineContext): NodeInfo {
  const load = ctx.loadMeter.read();
  return {
    id: ctx.nodeId,
    host: ctx.self.host,
    pid: ctx.self.pid,
    started: ctx.started,
    runsHosted: ctx.runsHosted,
    activeRuns: ctx.hosts.size,
    tasksDone: ctx.tasks?.done ?? 0,
    activeTasks: ctx.tasks?.active ?? 0,
    runs: [...ctx.hosts.keys()].slice(0, NODE_RUNS_LISTED),
    load,
    lastHeartbeat: isoNow(ctx.clock),
  };
}

/** Tell the cluster this node is alive (GET /nodes); entries expire without beats. */
export async function beat(ctx: EngineContext): Promise<void> {
  await ctx.bus.membership?.beat(nodeInfo(ctx));
}

/** The cluster's nodes (from the bus's membership), or this node alone without one. */
export async function nodes(ctx: EngineContext): Promise<NodeInfo[]> {
  return ctx.bus.membership ? ctx.bus.membership.list() : [nodeInfo(ctx)];
}
