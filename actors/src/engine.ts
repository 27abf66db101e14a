import { randomUUID } from 'node:crypto';
import { AoError, GraphRegistry, parseBudget, zodIssuePath } from '@ao/graphs';
import type { Budget, GraphBuilder, GraphDef } from '@ao/graphs';
import { actorPath, createActorSystem, newTraceContext, RunJournal, systemClock, traceIdOf } from '@ao/runtime';
import type {
  ActorPath,
  ActorRef,
  ActorSystem,
  Bus,
  Clock,
  Envelope,
  ListRunsQuery,
  NodeState,
  RunRecord,
  Store,
  Subscription,
  ToolRegistry,
  TraceContext,
} from '@ao/runtime';
import { fromRunSupervisor, SUPERVISOR_PATH } from './run-supervisor/run-supervisor.js';
import type { ActorMessage, LlmResolver, RunServices } from './services.js';

export interface EngineOptions {
  store: Store;
  bus: Bus;
  llm: LlmResolver;
  tools: ToolRegistry;
  clock?: Clock;
  /** This runtime node's id; the runs it hosts carry it as owner. */
  nodeId?: string;
  graphs?: ReadonlyArray<GraphBuilder<never> | GraphDef<never> | GraphBuilder<unknown> | GraphDef<unknown>>;
}

export interface StartRunRequest {
  graph: string;
  input?: unknown;
  /** Overrides of the graph's budget, limit by limit. */
  budget?: Budget;
}

interface Host {
  runId: string;
  refs: Map<ActorPath, ActorRef<ActorMessage>>;
  sub: Subscription;
  journal: RunJournal;
  done: Promise<void>;
}

/**
 * A runtime node's engine: registers graphs, starts runs (one run supervisor actor each), routes
 * bus envelopes to the actors of the runs it hosts, and answers queries from the store.
 *
 * @example
 * const engine = await Engine.create({ store, bus, llm: () => new OfflineLlm(), tools, graphs: exampleGraphs });
 * const run = await engine.startRun({ graph: 'triage', input: { intent: 'refund' } });
 * const done = await engine.waitForRun(run.id);
 */
export class Engine {
  readonly graphs: GraphRegistry;
  readonly nodeId: string;
  private readonly system: ActorSystem;
  private readonly hosts = new Map<string, Host>();
  private readonly clock: Clock;
  private closed = false;

  private constructor(private readonly o: EngineOptions) {
    this.graphs = new GraphRegistry((t) => o.tools.has(t));
    this.nodeId = o.nodeId ?? 'local';
    this.clock = o.clock ?? systemClock;
    this.system = createActorSystem();
    for (const g of o.graphs ?? []) this.graphs.register(g as GraphBuilder<unknown>);
  }

  static async create(o: EngineOptions): Promise<Engine> {
    const e = new Engine(o);
    await e.closeInterrupted();
    return e;
  }

  get store(): Store {
    return this.o.store;
  }

  get bus(): Bus {
    return this.o.bus;
  }

  register<I>(g: GraphBuilder<I> | GraphDef<I>): GraphDef<I> {
    return this.graphs.register(g);
  }

  /** Validate and record a run, then start it; resolves once it is stored (status `pending`). */
  async startRun(req: StartRunRequest): Promise<RunRecord> {
    if (this.closed) throw new AoError('AO_INTERNAL', 'engine is shut down');
    const def = this.graphs.get(req.graph);
    if (!def) throw new AoError('AO_GRAPH_NOT_FOUND', `no graph named "${req.graph}"; known: ${this.graphs.list().map((g) => g.name).join(', ')}`, { field: 'graph' });
    let input: unknown = req.input ?? {};
    if (def.inputSchema) {
      const r = def.inputSchema.safeParse(input);
      if (!r.success) {
        const field = zodIssuePath(r.error.issues[0], 'input');
        throw new AoError('AO_VALIDATION', `${field}: ${r.error.issues[0]?.message}`, { ...(field ? { field } : {}) });
      }
      input = r.data;
    }
    const budget = parseBudget({ ...def.budget, ...(req.budget ?? {}) });
    const trace = newTraceContext();
    const nodes: Record<string, NodeState> = Object.fromEntries(def.nodes.map((n) => [n.id, { status: 'pending', iteration: 0, attempt: 0 }]));
    const run = await this.o.store.createRun({
      id: randomUUID(),
      graph: def.name,
      graphVersion: def.version,
      input,
      budget,
      nodes,
      traceId: traceIdOf(trace) ?? null,
      owner: this.nodeId,
    });
    await this.host(run, def, trace, budget);
    return run;
  }

  private async host(run: RunRecord, def: GraphDef<unknown>, trace: TraceContext, budget: Budget): Promise<void> {
    const journal = new RunJournal(this.o.store, this.o.bus, run.id, run.lastSeq);
    const refs = new Map<ActorPath, ActorRef<ActorMessage>>();
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const sub = this.o.bus.subscribe(run.id, (env: Envelope) => {
      const ref = refs.get(env.to);
      if (ref && !ref.stopped) ref.tell(env);
    });
    const host: Host = { runId: run.id, refs, sub, journal, done };
    this.hosts.set(run.id, host);
    const services: RunServices = {
      runId: run.id,
      def,
      input: run.input,
      journal,
      llm: this.o.llm,
      tools: this.o.tools,
      clock: this.clock,
      trace,
      register: (ref) => void refs.set(ref.path, ref),
      unregister: (path) => void refs.delete(path),
      finished: () => {
        // Let the final commit's envelopes reach subscribers before the run's routes go.
        void journal.flush().then(() => {
          sub.unsubscribe();
          supervisor.stop();
          this.hosts.delete(run.id);
          resolveDone();
        });
      },
    };
    const supervisor = this.system.spawn(`run-${run.id}`, SUPERVISOR_PATH, fromRunSupervisor(services));
    refs.set(SUPERVISOR_PATH, supervisor);
    await journal.append(
      [
        {
          runId: run.id,
          from: actorPath('gateway'),
          to: SUPERVISOR_PATH,
          type: 'run.started',
          payload: { graph: def.name, version: def.version, input: run.input, budget },
          causationId: null,
          trace,
        },
      ],
      { status: 'running', startedAt: new Date().toISOString() },
    );
  }

  getRun(id: string): Promise<RunRecord | undefined> {
    return this.o.store.getRun(id);
  }

  listRuns(q: ListRunsQuery): Promise<{ runs: RunRecord[]; next: string | null }> {
    return this.o.store.listRuns(q);
  }

  listEvents(runId: string, q: { after?: number; limit: number }): Promise<Envelope[]> {
    return this.o.store.listEvents(runId, q);
  }

  /** Resolves with the finished run (any terminal status). */
  async waitForRun(id: string, timeoutMs = 60_000): Promise<RunRecord> {
    const host = this.hosts.get(id);
    if (host) {
      let t: NodeJS.Timeout | undefined;
      await Promise.race([
        host.done,
        new Promise((_, rej) => (t = setTimeout(() => rej(new Error(`run ${id} did not finish in ${timeoutMs} ms`)), timeoutMs))),
      ]).finally(() => clearTimeout(t));
    }
    const run = await this.o.store.getRun(id);
    if (!run) throw new AoError('AO_RUN_NOT_FOUND', `no run ${id}`, { field: 'id' });
    return run;
  }

  /** Runs this node hosts right now. */
  activeRuns(): string[] {
    return [...this.hosts.keys()];
  }

  /**
   * Runs this node was hosting when its process stopped. Resuming them from checkpoints is the
   * Durable checkpoints issue; until then they are closed as failed (AO_RUN_INTERRUPTED), said in
   * their log, rather than left looking alive.
   */
  private async closeInterrupted(): Promise<void> {
    const stale = await this.o.store.findRuns({ statuses: ['pending', 'running', 'waiting'], owner: this.nodeId });
    for (const run of stale) {
      const journal = new RunJournal(this.o.store, this.o.bus, run.id, run.lastSeq);
      const error = { code: 'AO_RUN_INTERRUPTED', message: `runtime node "${this.nodeId}" stopped while the run was ${run.status}` };
      await journal.append(
        [
          {
            runId: run.id,
            from: SUPERVISOR_PATH,
            to: SUPERVISOR_PATH,
            type: 'run.finished',
            payload: { status: 'failed', error, usage: run.usage },
            causationId: null,
            trace: null,
          },
        ],
        { status: 'failed', error, finishedAt: new Date().toISOString() },
      );
    }
  }

  /** Stop hosting: stops every actor; runs still in flight are closed as interrupted on next start. */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const h of this.hosts.values()) {
      h.sub.unsubscribe();
      await h.journal.flush();
    }
    this.system.shutdown();
    this.hosts.clear();
  }
}
