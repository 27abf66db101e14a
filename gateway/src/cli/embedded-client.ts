import type { Engine } from '@ao/actors';
import type { Budget } from '@ao/graphs';
import { AoError } from '@ao/graphs';
import { resolveRunRef } from '@ao/runtime';
import type { RunFile } from '@ao/runtime';
import { graphDetail, runSummary, runView, graphView } from '../http/views.js';
import { ApiError } from './client.js';
import type { Client, ReplayRequest, RunSearch, SignalRequestT } from './client.js';

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
  /** The full id a reference names (the id, or a unique prefix of 8+ characters), as the API resolves it. */
  private async id(ref: string, field = 'id'): Promise<string> {
    const run = await resolveRunRef(this.engine.queries, ref, { field }).catch((e) => this.rethrow(e));
    if (!run) throw new ApiError(404, 'AO_RUN_NOT_FOUND', `no run ${JSON.stringify(ref)}`, field);
    return run.id;
  }
  async startRun(req: { graph: string; input?: unknown; budget?: Budget }) {
    const run = await this.engine.startRun(req).catch((e) => this.rethrow(e));
    return { id: run.id, status: run.status };
  }
  async getRun(ref: string): ReturnType<Client['getRun']> {
    const run = await this.engine.queries.getRun(await this.id(ref));
    if (!run) throw new ApiError(404, 'AO_RUN_NOT_FOUND', `no run ${JSON.stringify(ref)}`, 'id');
    // As GET /runs/:id answers: usage against every limit.
    const u = await this.engine.queries.usage(run.id);
    return {
      ...runView(run),
      budgetUsage: u ? { limits: u.limits, used: u.used, reserved: u.reserved, ...(u.wallClock ? { wallClock: u.wallClock } : {}) } : null,
    };
  }
  async listRuns({ q, ...rest }: RunSearch) {
    return (await this.engine.queries.listRuns({ ...rest, ...(q !== undefined ? { idPrefix: q.toLowerCase() } : {}), limit: rest.limit ?? 20 })).runs.map(
      runSummary,
    );
  }
  async events(ref: string, after: number, limit = 1000) {
    return this.engine.queries.listEvents(await this.id(ref), { after, limit });
  }
  async graphs() {
    return this.engine.graphs.list().map(graphView);
  }
  async graph(name: string) {
    const g = this.engine.graphs.get(name);
    if (!g) throw new ApiError(404, 'AO_GRAPH_NOT_FOUND', `no graph named "${name}"`, 'name');
    return graphDetail(g);
  }
  async cancel(ref: string) {
    const run = await this.engine.cancel(await this.id(ref)).catch((e) => this.rethrow(e));
    return { id: run.id, status: run.status };
  }
  async replay(ref: string, req: ReplayRequest) {
    return runView(await this.engine.replay(await this.id(ref), req).catch((e) => this.rethrow(e)));
  }
  async diff(a: string, b: string) {
    const [ia, ib] = await Promise.all([this.id(a, 'a'), this.id(b, 'b')]);
    return this.engine.diff(ia, ib).catch((e) => this.rethrow(e));
  }
  async signal(ref: string, req: SignalRequestT) {
    const id = await this.id(ref);
    const r = await this.engine.signal(id, req).catch((e) => this.rethrow(e));
    return { id, status: r.run.status, signal: r.signal.id, wait: r.wait?.id ?? null, duplicate: r.duplicate };
  }
  async exportRun(ref: string, o: { checkpoints: boolean }) {
    return this.engine.queries.exportRun(await this.id(ref), o).catch((e) => this.rethrow(e));
  }
  async importRun(file: RunFile, o: { as?: string } = {}) {
    const renamed = o.as !== undefined ? await this.engine.renamedRun(file, o.as).catch((e) => this.rethrow(e)) : file;
    // An import is a write: the engine's import port.
    const run = await this.engine.importRun(renamed).catch((e) => this.rethrow(e));
    return { id: run.id, graph: run.graph, status: run.status, events: file.events.length, checkpoints: file.checkpoints.length };
  }
}
