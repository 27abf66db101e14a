// Types only from the engine and the HTTP views: a command that talks to a gateway loads neither
// (the engine's client, EmbeddedClient, is in embedded-client.ts, imported when it is needed).
import type { Engine } from '@ao/actors';
import type { Budget } from '@ao/graphs';
import type { z } from 'zod';
import type { Envelope, RunFile, RunStatus } from '@ao/runtime';
import type { GraphDetailViewT, GraphViewT, Imported, ReplayBody, runSummary, RunViewT, SignalAccepted, SignalBody } from '../http/views.js';

export type RunSummaryT = ReturnType<typeof runSummary>;

/** What the CLI needs of a gateway: over HTTP, or an engine in this process when none is running. */
export interface Client {
  readonly where: string;
  startRun(req: { graph: string; input?: unknown; budget?: Budget }): Promise<{ id: string; status: string }>;
  getRun(id: string): Promise<RunViewT>;
  listRuns(q: RunSearch): Promise<RunSummaryT[]>;
  events(id: string, after: number, limit?: number): Promise<Envelope[]>;
  graphs(): Promise<GraphViewT[]>;
  /** One graph with its input JSON Schema; AO_GRAPH_NOT_FOUND (404) when there is none by that name. */
  graph(name: string): Promise<GraphDetailViewT>;
  cancel(id: string): Promise<{ id: string; status: string }>;
  replay(id: string, req: ReplayRequest): Promise<RunViewT>;
  diff(a: string, b: string): Promise<RunDiffT>;
  signal(id: string, req: SignalRequestT): Promise<SignalAcceptedT>;
  /** A finished run as a run file (GET /runs/:id/export). */
  exportRun(id: string, o: { checkpoints: boolean }): Promise<RunFile>;
  /** Load a run file as a run (POST /runs/import), under a new id with `as`. */
  importRun(file: RunFile, o?: { as?: string }): Promise<ImportedT>;
}

export type ImportedT = z.infer<typeof Imported>;
/** What `ao runs` searches by (as `GET /runs` takes it): `q` an id prefix, `since`/`until` ISO instants. */
export type RunSearch = { status?: RunStatus; graph?: string; limit?: number; q?: string; since?: string; until?: string };

export type SignalRequestT = z.input<typeof SignalBody>;
export type SignalAcceptedT = z.infer<typeof SignalAccepted>;

export type ReplayRequest = z.input<typeof ReplayBody>;
export type RunDiffT = Awaited<ReturnType<Engine['diff']>>;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export class HttpClient implements Client {
  /** `apiKey` (default `AO_API_KEY`) is sent as `Authorization: Bearer` when the gateway requires keys. */
  constructor(
    readonly where: string,
    private readonly apiKey = process.env.AO_API_KEY,
  ) {}

  private async req<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {
      ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}),
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    };
    const res = await fetch(new URL(path, this.where), { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const json = (await res.json().catch(() => ({}))) as { error?: { code: string; message: string; field?: string } };
    if (!res.ok) throw new ApiError(res.status, json.error?.code ?? 'AO_INTERNAL', json.error?.message ?? res.statusText, json.error?.field);
    return json as T;
  }

  startRun(req: { graph: string; input?: unknown; budget?: Budget }) {
    return this.req<{ id: string; status: string }>('POST', '/runs', req);
  }
  getRun(id: string) {
    return this.req<RunViewT>('GET', `/runs/${encodeURIComponent(id)}`);
  }
  async listRuns(q: RunSearch) {
    const qs = new URLSearchParams(
      Object.entries(q)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]): [string, string] => [k, String(v)]),
    );
    return (await this.req<{ runs: RunSummaryT[] }>('GET', `/runs?${qs}`)).runs;
  }
  async events(id: string, after: number, limit = 1000) {
    return (await this.req<{ events: Envelope[] }>('GET', `/runs/${encodeURIComponent(id)}/events?after=${after}&limit=${limit}`)).events;
  }
  async graphs() {
    return (await this.req<{ graphs: GraphViewT[] }>('GET', '/graphs')).graphs;
  }
  graph(name: string) {
    return this.req<GraphDetailViewT>('GET', `/graphs/${encodeURIComponent(name)}`);
  }
  cancel(id: string) {
    return this.req<{ id: string; status: string }>('POST', `/runs/${encodeURIComponent(id)}/cancel`);
  }
  replay(id: string, req: ReplayRequest) {
    return this.req<RunViewT>('POST', `/runs/${encodeURIComponent(id)}/replay`, req);
  }
  diff(a: string, b: string) {
    return this.req<RunDiffT>('GET', `/runs/${encodeURIComponent(a)}/diff/${encodeURIComponent(b)}`);
  }
  signal(id: string, req: SignalRequestT) {
    return this.req<SignalAcceptedT>('POST', `/runs/${encodeURIComponent(id)}/signal`, req);
  }

  exportRun(id: string, o: { checkpoints: boolean }) {
    return this.req<RunFile>('GET', `/runs/${encodeURIComponent(id)}/export?checkpoints=${o.checkpoints}`);
  }
  importRun(file: RunFile, o: { as?: string } = {}) {
    return this.req<ImportedT>('POST', `/runs/import${o.as !== undefined ? `?as=${encodeURIComponent(o.as)}` : ''}`, file);
  }

  /** Whether a gateway answers at `url` (quickly: the CLI falls back to an embedded engine). */
  static async reachable(url: string): Promise<boolean> {
    try {
      const res = await fetch(new URL('/health', url), { signal: AbortSignal.timeout(800) });
      return res.ok;
    } catch {
      return false;
    }
  }
}
