import type { Budget, GraphDef } from '@ao/graphs';
import { exportRun } from '@ao/runtime';
import type { Envelope, ListRunsQuery, RunFile, RunRecord, RunStatus, Store } from '@ao/runtime';
import { usageReport } from '../budget/usage.js';
import type { UsageReport } from '../budget/usage.js';
import { wallClockUse } from '../budget/wall-clock.js';
import { ranOnSummary } from '../tasks/ran-on.js';
import type { EngineContext } from './context.js';

/**
 * The reads of run state the API and the CLI make (`engine.queries`): runs, their events,
 * checkpoints, usage, where they ran, and run files. Nothing here writes; the gateway reads runs
 * through this, never through the store.
 */
export interface RunQueries extends Pick<Store, 'findRunByIdempotencyKey' | 'listCheckpoints' | 'getCheckpoint' | 'listEventsOfType'> {
  getRun(id: string): Promise<RunRecord | undefined>;
  listRuns(q: ListRunsQuery): Promise<{ runs: RunRecord[]; next: string | null }>;
  /** How many of the tenant's runs have one of these statuses. */
  countRuns(tenant: string, statuses: readonly RunStatus[]): Promise<number>;
  listEvents(runId: string, q: { after?: number; limit: number }): Promise<Envelope[]>;
  /** The run's cost ledger rolled up (totals, in flight, per node, actor and model), or undefined for an unknown run. */
  usage(runId: string): Promise<UsageReport | undefined>;
  /**
   * Where a run's steps and branches ran, from the `ranOn` of their last words, each node in order
   * of first appearance: its host (or hosts, after a failover) and the nodes that ran its tasks.
   * Empty without a cluster (nothing is named there) and for a replay (it runs on its host).
   */
  ranOn(runId: string): Promise<ReturnType<typeof ranOnSummary>>;
  /** A finished run as a run file (`ao export`, GET /runs/:id/export): its events, and its checkpoints if asked. */
  exportRun(id: string, o?: { checkpoints?: boolean }): Promise<RunFile>;
}

/** `RunQueries` over the engine's store. */
export class StoreQueries implements RunQueries {
  constructor(private readonly ctx: EngineContext) {}

  getRun(id: string): Promise<RunRecord | undefined> {
    return this.ctx.store.getRun(id);
  }

  listRuns(q: ListRunsQuery): Promise<{ runs: RunRecord[]; next: string | null }> {
    return this.ctx.store.listRuns(q);
  }

  countRuns(tenant: string, statuses: readonly RunStatus[]): Promise<number> {
    return this.ctx.store.countRuns(tenant, statuses);
  }

  findRunByIdempotencyKey(tenant: string, key: string): ReturnType<Store['findRunByIdempotencyKey']> {
    return this.ctx.store.findRunByIdempotencyKey(tenant, key);
  }

  listEvents(runId: string, q: { after?: number; limit: number }): Promise<Envelope[]> {
    return this.ctx.store.listEvents(runId, q);
  }

  listEventsOfType(runId: string, prefix: string): ReturnType<Store['listEventsOfType']> {
    return this.ctx.store.listEventsOfType(runId, prefix);
  }

  listCheckpoints(runId: string): ReturnType<Store['listCheckpoints']> {
    return this.ctx.store.listCheckpoints(runId);
  }

  getCheckpoint(runId: string, step: number): ReturnType<Store['getCheckpoint']> {
    return this.ctx.store.getCheckpoint(runId, step);
  }

  async usage(runId: string): Promise<UsageReport | undefined> {
    const { store } = this.ctx;
    const run = await store.getRun(runId);
    if (!run) return undefined;
    const def = this.ctx.graphs.get(run.graph);
    const [events, runEvents] = await Promise.all([store.listEventsOfType(run.id, 'budget.'), store.listEventsOfType(run.id, 'run.')]);
    const report = usageReport(def ?? ({ nodes: [] } as unknown as GraphDef<unknown>), run.budget as Budget, events);
    const wallClock = wallClockUse(runEvents, this.ctx.clock.now());
    return wallClock ? { ...report, wallClock } : report;
  }

  async ranOn(runId: string): Promise<ReturnType<typeof ranOnSummary>> {
    if (!this.ctx.bus.queue) return [];
    return ranOnSummary(await this.ctx.store.listEventsOfType(runId, ''));
  }

  exportRun(id: string, o: { checkpoints?: boolean } = {}): Promise<RunFile> {
    return exportRun(this.ctx.store, id, o);
  }
}
