import type { GraphDef } from '@ao/graphs';
import { log, nodeIdInUse } from '@ao/runtime';
import type { Envelope, Recording, RunRecord, TraceContext } from '@ao/runtime';
import type { Ledger } from '../budget/ledger.js';
import { RunHost } from '../host.js';
import type { ResumePlan } from '../resume-plan.js';
import type { CheckpointState } from '../run-supervisor/checkpoint.js';
import { release } from './context.js';
import type { EngineContext } from './context.js';

/** What hosting a run asks of the other parts: a fork for a budget decision, a look for answers after the run went to sleep. */
export interface HostingHooks {
  /** Make (or find, after a crash) the fork of run `id` at `step` under `budget`; its id. */
  fork(id: string, step: number, budget: Record<string, unknown>, key: string): Promise<string>;
  afterPassivation(id: string): void;
}

export interface HostState {
  known?: Envelope[];
  restored?: CheckpointState;
  ledger?: Ledger;
  recording?: Recording;
  agents?: ResumePlan['agents'];
}

/** Hosting runs on this node: a `RunHost` per run, kept in the context's `hosts` while it lives. */
export class Hosting {
  constructor(
    private readonly ctx: EngineContext,
    private readonly hooks: HostingHooks,
  ) {}

  /** A host for the run, registered in `hosts` (not started: see `start`). */
  host(run: RunRecord, def: GraphDef<unknown>, trace: TraceContext, o: HostState): RunHost {
    const ctx = this.ctx;
    // A resume that was on its way when the id was lost must not start writing under it.
    if (ctx.lost) throw nodeIdInUse(ctx.nodeId, undefined, 'lost');
    const host = new RunHost(
      {
        nodeId: ctx.nodeId,
        store: ctx.store,
        bus: ctx.bus,
        system: ctx.system,
        llm: ctx.o.llm,
        tools: ctx.o.tools,
        secrets: ctx.secrets,
        clock: ctx.clock,
        prices: ctx.o.prices ?? {},
        ...(ctx.o.stageFlushMs !== undefined ? { stageFlushMs: ctx.o.stageFlushMs } : {}),
        ...(ctx.o.maxPayloadBytes !== undefined ? { maxPayloadBytes: ctx.o.maxPayloadBytes } : {}),
        // In a cluster the run's swarm branches go on the task queue.
        ...(ctx.bus.queue && ctx.bus.rpc ? { tasks: { hostStarted: ctx.started, silentMs: Math.max(10_000, 2 * ctx.leaseMs) } } : {}),
        onLost: (h, e) => {
          log.error(`its hosting cannot go on (${(e as Error).message}); giving the run up to be resumed`, {
            component: 'engine',
            nodeId: ctx.nodeId,
            runId: h.run.id,
          });
          h.stop();
          if (ctx.hosts.get(h.run.id) === h) ctx.hosts.delete(h.run.id);
          void release(ctx, [h.run.id]);
        },
        fork: (id, step, budget, key) => this.hooks.fork(id, step, budget, key),
      },
      run,
      def,
      trace,
      { ...o, onEnd: (h) => ctx.hosts.get(h.run.id) === h && ctx.hosts.delete(h.run.id), onPassivated: (h) => this.hooks.afterPassivation(h.run.id) },
    );
    ctx.hosts.set(run.id, host);
    ctx.runsHosted += 1;
    return host;
  }

  /**
   * Start a host; if that fails (the bus or the store), let the run go (stop the host, give up the
   * lease) so the queue or a claim starts it again.
   */
  async start(host: RunHost, start: () => Promise<void>): Promise<void> {
    try {
      await start();
    } catch (e) {
      host.stop();
      if (this.ctx.hosts.get(host.run.id) === host) this.ctx.hosts.delete(host.run.id);
      await release(this.ctx, [host.run.id]);
      throw e;
    }
  }
}
