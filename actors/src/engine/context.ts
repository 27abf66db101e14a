import { GraphRegistry } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { createActorSystem, isoNow, RunIntake, SecretVault, systemClock, thisProcess } from '@ao/runtime';
import type { ActorSystem, Bus, Clock, ProcessRef, Store, Subscription } from '@ao/runtime';
import type { RunHost } from '../host.js';
import { LoadMeter } from '../load-meter.js';
import { RunWatch } from '../run-watch.js';
import { TaskRunner } from '../tasks/task-runner.js';
import type { EngineOptions } from './options.js';

/**
 * What the engine's parts share: its options and ports, the runs hosted here, and the few flags
 * every part reads (shut down, identity lost). Each part takes it and the other parts it calls;
 * none goes through the `Engine` facade.
 */
export interface EngineContext {
  readonly o: EngineOptions;
  readonly store: Store;
  readonly bus: Bus;
  readonly clock: Clock;
  readonly nodeId: string;
  readonly leaseMs: number;
  readonly graphs: GraphRegistry;
  readonly system: ActorSystem;
  readonly secrets: SecretVault;
  /** The runs this node hosts, by id. */
  readonly hosts: Map<string, RunHost>;
  /** Wall time, before the clock is set: when this node's process started. */
  readonly started: string;
  readonly self: ProcessRef;
  /** This process's CPU and event-loop delay between heartbeats (GET /nodes). */
  readonly loadMeter: LoadMeter;
  /** Follows runs hosted elsewhere by the bus's run signals (absent without them). */
  readonly watch: RunWatch | undefined;
  /** Runs this node's share of the cluster's node tasks (absent without a cluster, or passive). */
  readonly tasks: TaskRunner | undefined;
  /** New runs, inserted together with the others submitted at the same time (group commit). */
  readonly intake: RunIntake;
  /** Runs being taken from the queue right now (shutdown waits for them). */
  readonly taking: Set<Promise<void>>;
  /** The periodic loops (renew, claim, beats, sweep). */
  readonly loops: NodeJS.Timeout[];
  /** The bus consumers of the run and task queues. */
  readonly subs: { queue?: Subscription; tasks?: Subscription };
  closed: boolean;
  /** Another process took this node's id: nothing may be written or released under it any more. */
  lost: boolean;
  runsHosted: number;
}

export function createContext(o: EngineOptions): EngineContext {
  const graphs = new GraphRegistry((t) => o.tools.has(t));
  const nodeId = o.identity?.id ?? o.nodeId ?? 'local';
  const started = isoNow(); // wall time, before the clock is set: when this node's process started
  const clock = o.clock ?? systemClock;
  const leaseMs = o.leaseMs ?? 15_000;
  const system = createActorSystem();
  const secrets = new SecretVault(o.store, o.secretKey);
  const watch = o.bus.watchRuns ? new RunWatch(o.bus as Bus & Required<Pick<Bus, 'watchRuns'>>) : undefined;
  const intake = new RunIntake(o.store);
  for (const g of o.graphs ?? []) graphs.register(g as GraphBuilder<unknown>);
  const tasks =
    o.bus.queue && o.bus.rpc && !o.passive
      ? new TaskRunner({ nodeId, store: o.store, bus: o.bus, system, graphs, llm: o.llm, tools: o.tools, secrets, clock, prices: o.prices ?? {}, leaseMs })
      : undefined;
  return {
    o,
    store: o.store,
    bus: o.bus,
    clock,
    nodeId,
    leaseMs,
    graphs,
    system,
    secrets,
    hosts: new Map(),
    started,
    self: o.identity?.self ?? thisProcess(),
    loadMeter: new LoadMeter(),
    watch,
    tasks,
    intake,
    taking: new Set(),
    loops: [],
    subs: {},
    closed: false,
    lost: false,
    runsHosted: 0,
  };
}

/**
 * Give up leases, unless this node's id was taken over: the leases under it are the new
 * holder's then (the same owner id), and releasing them would hand its runs to anyone.
 */
export async function release(ctx: EngineContext, ids: string[]): Promise<void> {
  if (ctx.lost || !ids.length) return;
  await ctx.store.releaseLeases(ctx.nodeId, ids).catch(() => undefined);
}

/** Wait for `p` (its failure ignored) at most `ms`. */
export async function within(ms: number, p: Promise<unknown> | undefined): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([Promise.resolve(p).catch(() => undefined), new Promise((r) => (t = setTimeout(r, ms)))]).finally(() => clearTimeout(t));
}
