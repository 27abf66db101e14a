import type { Engine } from '@ao/actors';
import type { Budget } from '@ao/graphs';
import { AoError } from '@ao/graphs';
import { exportRun, importRun } from '@ao/runtime';
import type { RunFile, RunStatus } from '@ao/runtime';
import { graphDetail, runSummary, runView, graphView } from '../http/views.js';
import { ApiError } from './client.js';
import type { Client, ReplayRequest, SignalRequestT } from './client.js';

/** The same answers, straight from an engine in this process. */
export class EmbeddedClient implements Client {
  constructor(
    private readonly engine: Engine,
    readonly where: string,
  ) {}

  private rethrow(e: unknown): never {
    if (e instanceof AoError) throw new ApiError(400, e.code, e.message, e.field);
    throw e;
  }
  async startRun(req: { graph: string; input?: unknown; budget?: Budget }) {
    const run = await this.engine.startRun(req).catch((e) => this.rethrow(e));
    return { id: run.id, status: run.status };
  }
  async getRun(id: string): ReturnType<Client['getRun']> {
    const run = await this.engine.getRun(id);
    if (!run) throw new ApiError(404, 'AO_RUN_NOT_FOUND', `no run ${id}`, 'id');
    // As GET /runs/:id answers: usage against every limit.
    const u = await this.engine.usage(run.id);
    return { ...runView(run), budgetUsage: u ? { limits: u.limits, used: u.used, reserved: u.reserved } : null };
  }
  async listRuns(q: { status?: RunStatus; graph?: string; limit?: number }) {
    return (await this.engine.listRuns({ ...q, limit: q.limit ?? 20 })).runs.map(runSummary);
  }
  events(id: string, after: number, limit = 1000) {
    return this.engine.listEvents(id, { after, limit });
  }
  async graphs() {
    return this.engine.graphs.list().map(graphView);
  }
  async graph(name: string) {
    const g = this.engine.graphs.get(name);
    if (!g) throw new ApiError(404, 'AO_GRAPH_NOT_FOUND', `no graph named "${name}"`, 'name');
    return graphDetail(g);
  }
  async cancel(id: string) {
    const run = await this.engine.cancel(id).catch((e) => this.rethrow(e));
    return { id: run.id, status: run.status };
  }
  async replay(id: string, req: ReplayRequest) {
    return runView(await this.engine.replay(id, req).catch((e) => this.rethrow(e)));
  }
  diff(a: string, b: string) {
    return this.engine.diff(a, b).catch((e) => this.rethrow(e));
  }
  async signal(id: string, req: SignalRequestT) {
    const r = await this.engine.signal(id, req).catch((e) => this.rethrow(e));
    return { id, status: r.run.status, signal: r.signal.id, wait: r.wait?.id ?? null, duplicate: r.duplicate };
  }
  exportRun(id: string, o: { checkpoints: boolean }) {
    return exportRun(this.engine.store, id, o).catch((e) => this.rethrow(e));
  }
  async importRun(file: RunFile) {
    const run = await importRun(this.engine.store, file).catch((e) => this.rethrow(e));
    return { id: run.id, graph: run.graph, status: run.status, events: file.events.length, checkpoints: file.checkpoints.length };
  }
}
