import type { GraphBuilder, GraphDef, GraphRegistry } from '@ao/graphs';
import { importRun } from '@ao/runtime';
import type { Bus, Envelope, ListRunsQuery, NodeInfo, RunFile, RunRecord, Store } from '@ao/runtime';
import type { UsageReport } from '../budget/usage.js';
import type { ReplayRequest } from '../replay.js';
import { createContext } from './context.js';
import type { EngineContext } from './context.js';
import { cancelRun } from './endings.js';
import { waitForRun } from './follow.js';
import { Hosting } from './hosting.js';
import { Intake } from './intake.js';
import type { StartRunRequest } from './intake.js';
import { Leases } from './leases.js';
import { shutdown, startLoops } from './lifecycle.js';
import { beat, nodes } from './membership.js';
import type { EngineOptions } from './options.js';
import { apiKeysOf } from './ports.js';
import type { ApiKeyPort } from './ports.js';
import { StoreQueries } from './queries.js';
import type { RunQueries } from './queries.js';
import { Recovery } from './recovery.js';
import { Replays } from './replays.js';
import { Resumer } from './resume.js';
import { sweep } from './retention.js';
import { Waits } from './waits.js';
import type { SignalRequest, SignalResult } from './waits.js';

/**
 * A runtime node's engine: registers graphs, starts runs (one run supervisor actor each), hosts
 * them under a lease it renews, and takes over runs whose lease expired (a node that died),
 * resuming them from their latest checkpoint.
 *
 * A thin facade: each job is a part of this folder (`intake.ts`, `hosting.ts`, `resume.ts`,
 * `recovery.ts`, `leases.ts`, `waits.ts`, `follow.ts`, `replays.ts`, `queries.ts`, ...), sharing
 * an `EngineContext`.
 *
 * @example
 * const engine = await Engine.create({ store, bus, llm: () => new OfflineLlm(), tools, graphs: exampleGraphs });
 * const run = await engine.startRun({ graph: 'triage', input: { intent: 'refund' } });
 * const done = await engine.waitForRun(run.id);
 */
export class Engine {
  readonly graphs: GraphRegistry;
  readonly nodeId: string;
  /** The reads of run state the API makes (the gateway reads runs through this, never the store). */
  readonly queries: RunQueries;
  private readonly ctx: EngineContext;
  private readonly intake: Intake;
  private readonly recovery: Recovery;
  private readonly leases: Leases;
  private readonly waits: Waits;
  private readonly replays: Replays;
  private keys: ApiKeyPort | undefined;

  private constructor(o: EngineOptions) {
    const ctx = createContext(o);
    this.ctx = ctx;
    this.graphs = ctx.graphs;
    this.nodeId = ctx.nodeId;
    // Hosting calls back into two parts made after it (a run's fork is a replay; a run that fell
    // asleep looks for answers): the hooks are late-bound, to the parts, not to this facade.
    const hosting: Hosting = new Hosting(ctx, {
      fork: (id, step, budget, key): Promise<string> => replays.fork(id, step, budget, key),
      afterPassivation: (id) => void waits.afterPassivation(id),
    });
    const resumer: Resumer = new Resumer(ctx, hosting);
    const waits: Waits = new Waits(ctx, resumer);
    const replays: Replays = new Replays(ctx, resumer);
    this.intake = new Intake(ctx, hosting, resumer);
    this.recovery = new Recovery(ctx, resumer);
    this.leases = new Leases(ctx);
    this.waits = waits;
    this.replays = replays;
    this.queries = new StoreQueries(ctx);
  }

  /** Create the engine and resume the runs this node held before a restart or that no node holds. */
  static async create(o: EngineOptions): Promise<Engine> {
    const e = new Engine(o);
    const ctx = e.ctx;
    if (!o.passive) await e.recovery.claim(true);
    startLoops(ctx, {
      renew: () => e.leases.renew(),
      claim: () => e.recovery.claim(false),
      beat: () => beat(ctx),
      beatIdentity: () => e.leases.beatIdentity(),
      sweep: () => e.sweep(),
    });
    if (o.bus.queue && !o.passive) {
      ctx.subs.queue = o.bus.queue.consume('runs', (p) => e.intake.fromQueue(p));
      await ctx.subs.queue.ready;
    }
    if (ctx.tasks) {
      const tasks = ctx.tasks;
      ctx.subs.tasks = o.bus.queue!.consume('tasks', (p, info) => tasks.run(p, info), { concurrency: o.taskConcurrency ?? 32 });
      await ctx.subs.tasks.ready;
    }
    if (o.bus.membership && !o.passive) await beat(ctx);
    return e;
  }

  /** Which store the engine writes to: a fact about the node (`/health`, the CLI's banner). */
  get storeKind(): Store['kind'] {
    return this.ctx.store.kind;
  }

  /** The store's API keys (the gateway's authenticator, `ao keys`, the bench's tenants): see `ports.ts`. */
  get apiKeys(): ApiKeyPort {
    return (this.keys ??= apiKeysOf(this.ctx.store));
  }

  /** Record a run file (its events and checkpoints) as a finished run of `tenant` (`POST /runs/import`, `ao import`). */
  importRun(file: RunFile, o: { tenant?: string } = {}): Promise<RunRecord> {
    return importRun(this.ctx.store, file, o);
  }

  /** True for an engine that hosts no runs of its own choosing: a gateway without a runtime node. */
  get passive(): boolean {
    return this.ctx.o.passive === true;
  }

  get bus(): Bus {
    return this.ctx.bus;
  }

  register<I>(g: GraphBuilder<I> | GraphDef<I>): GraphDef<I> {
    return this.graphs.register(g);
  }

  /** See `Replays.renamedRun`: a run file under a new id that still replays recorded. */
  renamedRun(file: RunFile, newId: string): Promise<RunFile> {
    return this.replays.renamedRun(file, newId);
  }

  /** Validate and record a run, then start it; resolves once it is stored (status `pending`). */
  startRun(req: StartRunRequest): Promise<RunRecord> {
    return this.intake.startRun(req);
  }

  /**
   * A submit is on its way (the gateway checks its tenant's cap first): until the returned function
   * is called, the runs stored meanwhile wait as part of the burst (`RunIntake.hold`).
   */
  submitting(): () => void {
    return this.ctx.intake.hold();
  }

  /** The cluster's nodes (from the bus's membership), or this node alone without one. */
  nodes(): Promise<NodeInfo[]> {
    return nodes(this.ctx);
  }

  /** See `Replays.replay`: replay a run from a checkpoint as a new run linked to it (a fork with `overrides`). */
  replay(id: string, req: ReplayRequest): Promise<RunRecord> {
    return this.replays.replay(id, req);
  }

  /** Where two runs first differ (actor by actor) and their per-node output differences. */
  diff(a: string, b: string): ReturnType<Replays['diff']> {
    return this.replays.diff(a, b);
  }

  /** See `Waits.signal`: answer a wait of a run; it is stored before anything else. */
  signal(id: string, req: SignalRequest): Promise<SignalResult> {
    return this.waits.signal(id, req);
  }

  /**
   * Cancel a run: the hosting node stops its actor tree (in-flight calls are aborted) and ends it
   * `cancelled`. Any node may take the request; the host sees the flag when it renews its lease.
   */
  cancel(id: string, reason = 'cancelled by request'): Promise<RunRecord> {
    return cancelRun(this.ctx, id, reason);
  }

  /** Apply every graph's retention policy to its finished runs. */
  sweep(): Promise<{ runs: number; checkpoints: number }> {
    return sweep(this.ctx);
  }

  getRun(id: string): Promise<RunRecord | undefined> {
    return this.queries.getRun(id);
  }

  listRuns(q: ListRunsQuery): Promise<{ runs: RunRecord[]; next: string | null }> {
    return this.queries.listRuns(q);
  }

  /** The run's cost ledger rolled up, or undefined for an unknown run (`RunQueries.usage`). */
  usage(runId: string): Promise<UsageReport | undefined> {
    return this.queries.usage(runId);
  }

  /** Where a run's steps and branches ran (`RunQueries.ranOn`). */
  ranOn(runId: string): ReturnType<RunQueries['ranOn']> {
    return this.queries.ranOn(runId);
  }

  listEvents(runId: string, q: { after?: number; limit: number }): Promise<Envelope[]> {
    return this.queries.listEvents(runId, q);
  }

  /** Resolves with the run once it is no longer hosted here (finished, parked), or its status now (see `follow.ts`). */
  waitForRun(id: string, timeoutMs = 60_000): Promise<RunRecord> {
    return waitForRun(this.ctx, id, timeoutMs);
  }

  /** Runs this node hosts right now. */
  activeRuns(): string[] {
    return [...this.ctx.hosts.keys()];
  }

  /** Live actors of a hosted run (0 when not hosted here). */
  liveActors(runId: string): number {
    return this.ctx.hosts.get(runId)?.liveActors() ?? 0;
  }

  /**
   * Stop hosting: stop every actor, then give up the leases so another node (or this one,
   * restarted) resumes the runs from their checkpoints at once.
   */
  shutdown(): Promise<void> {
    return shutdown(this.ctx, () => this.recovery.claiming);
  }
}
