import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { AoError, GraphRegistry, isAoError, parseBudget, zodIssuePath } from '@ao/graphs';
import type { Budget, BudgetAnswer, GraphBuilder, GraphDef } from '@ao/graphs';
import { beatIntervalMs, createActorSystem, NODE_RUNS_LISTED, emitRunSpan, envelopeIdFor, meters, newTraceContext, nodeIdInUse, RunIntake, RunJournal, runTraceContext, SecretVault, systemClock, TERMINAL_STATUSES, thisProcess, traceIdOf } from '@ao/runtime';
import type { ActorSystem, Bus, NodeIdentity, ProcessRef, CheckpointRecord, Clock, Envelope, ErrorInfo, ListRunsQuery, NodeInfo, NodeState, Recording, ReplayInfo, RunFile, RunPatch, RunRecord, SignalRecord, Store, StoredTurn, Subscription, ToolRegistry, TraceContext, WaitInfo } from '@ao/runtime';
import { isoNow, log } from '@ao/runtime';
import { foldLedger, isLedgerEvent } from './budget/budget-actor.js';
import { newLedger } from './budget/ledger.js';
import type { Ledger, PriceTable } from './budget/ledger.js';
import { nodeLimitsOf } from './budget/usage.js';
import { budgetWithOverrides, diffRuns, graphWithOverrides, loadRecording, replayCheckpoint, replayStartState } from './replay.js';
import type { ReplayRequest } from './replay.js';
import { usageReport } from './budget/usage.js';
import { wallClockUse } from './budget/wall-clock.js';
import type { UsageReport } from './budget/usage.js';
import { RunHost } from './host.js';
import { RunWatch, SIGNAL_GAP } from './run-watch.js';
import { ranOnSummary } from './tasks/ran-on.js';
import { LoadMeter } from './load-meter.js';
import { TaskRunner } from './tasks/task-runner.js';
import { CheckpointStateSchema } from './run-supervisor/checkpoint.js';
import type { CheckpointState } from './run-supervisor/checkpoint.js';
import { answerSchema, SUPERVISOR_PATH } from './run-supervisor/run-supervisor.js';
import { draft } from './services.js';
import type { LlmResolver } from './services.js';
import { resumePlan } from './resume-plan.js';
import type { ResumePlan } from './resume-plan.js';

/** What a batch of resumes read at once for one run (see `Engine.loadForResume`). */
interface Loaded {
  checkpoint: CheckpointRecord | undefined;
  first: Envelope | undefined;
  /** The start messages of the live children its checkpoint names. */
  starts: Envelope[];
  /** The run's events after `after` (the plan's: its checkpoint's seq, or before the earliest start message or resume point of a live child). */
  after: number;
  known: Envelope[];
  /** Where its live agents go on from (see ./resume-plan.ts). */
  plan: ResumePlan;
}

/** The envelopes after which a run's status has moved to where `waitForRun` stops following it. */
const RUN_ENDS: ReadonlySet<string> = new Set(['run.finished', 'run.parked', 'run.waiting']);
const settled = (run: RunRecord): boolean => TERMINAL_STATUSES.has(run.status) || run.status === 'waiting';

/** Wait for `p` (its failure ignored) at most `ms`. */
async function within(ms: number, p: Promise<unknown> | undefined): Promise<void> {
  let t: NodeJS.Timeout | undefined;
  await Promise.race([Promise.resolve(p).catch(() => undefined), new Promise((r) => (t = setTimeout(r, ms)))]).finally(() => clearTimeout(t));
}

/** The placeholder owner of a run waiting in the cluster's work queue for a node to take it. */
export const QUEUE_OWNER = '~queue';

/**
 * How often `waitForRun` reads the row of a run hosted elsewhere when no signal came: the last
 * resort for a signal lost without a reconnect (its host died between the commit and the signal).
 */
export const FOLLOW_RESYNC_MS = 15_000;

/** Runs claimed per query, and resumed at once, when taking runs over. */
const CLAIM_BATCH = 100;
const RESUME_CONCURRENCY = 8;
/** How many claim batches are taken and read before their runs are resumed (a lease covers the wait: 1,000 runs resume in seconds). */
const CLAIM_AHEAD = 10;

export interface EngineOptions {
  store: Store;
  bus: Bus;
  llm: LlmResolver;
  tools: ToolRegistry;
  clock?: Clock;
  /** This runtime node's id; the runs it hosts carry it as owner. */
  nodeId?: string;
  /**
   * This process's hold on its node id, taken before the engine claims anything
   * (`NodeIdentity.take`); its id is the engine's. The engine beats it and lets it go on
   * shutdown. If another process takes the id over (this one was silent past its lease), the
   * engine stops hosting at once, writing and releasing nothing (the runs and the leases under
   * that id are the other process's now), and calls `onIdentityLost`.
   */
  identity?: NodeIdentity;
  /** Told once the identity was lost (AO_NODE_ID_IN_USE): the engine has stopped; the process should exit. */
  onIdentityLost?: (error: AoError) => void;
  graphs?: ReadonlyArray<GraphBuilder<never> | GraphDef<never> | GraphBuilder<unknown> | GraphDef<unknown>>;
  /** How long a run's lease lasts without renewal; renewed every third of it. */
  leaseMs?: number;
  /** How often to look for runs whose lease expired (default: half the lease). */
  claimIntervalMs?: number;
  /** How often retention policies are applied (default 60 s; 0 = never). */
  sweepIntervalMs?: number;
  /** Claim and resume no runs (a read-only client such as `ao runs`); runs it starts are still hosted. */
  passive?: boolean;
  /** Price per million input and output tokens, by model, for `usd` budgets. */
  prices?: PriceTable;
  /** How often `waitForRun` reads the row of a run hosted elsewhere without being told to (default {@link FOLLOW_RESYNC_MS}). */
  followResyncMs?: number;
  /** Node tasks (swarm branches) this node runs at once in a cluster (default 32). */
  taskConcurrency?: number;
  /** How long a staged envelope may wait for its run's next commit (default `STAGE_FLUSH_MS`, 5 ms; tests that count commits set it long). */
  stageFlushMs?: number;
  /** The largest payload an envelope may carry, in bytes (`AO_MAX_PAYLOAD_BYTES`; default 8 MiB): past it the append that made it fails with AO_PAYLOAD_TOO_LARGE. */
  maxPayloadBytes?: number;
  /**
   * The 32-byte key secret tool results are sealed with (AO_SECRET_KEY; see `resolveSecretKey`).
   * Without it, secret parts of tool results cannot be kept: they are dropped (see `sealOutcome`).
   */
  secretKey?: Uint8Array;
}

/**
 * The graph's budget with a run's overrides: each limit may be tightened (or added); loosening one
 * is refused unless the graph was declared `overridable`.
 */
export function effectiveBudget(def: GraphDef<unknown>, override: Budget | undefined): Budget {
  if (!override) return def.budget;
  const o = parseBudget(override);
  const loosens = (field: string, mine: number | undefined, theirs: number | undefined) => {
    if (mine !== undefined && theirs !== undefined && theirs > mine && !def.budgetOverridable) {
      throw new AoError('AO_BUDGET_OVERRIDE_LOOSENS', `${field}: ${theirs} is above the graph's ${mine}; a run may only tighten it`, { field });
    }
  };
  for (const k of ['tokens', 'tools', 'wallClockSec', 'usd'] as const) loosens(`budget.${k}`, def.budget[k], o[k]);
  for (const [tool, cap] of Object.entries(o.perTool ?? {})) {
    if (!def.nodes.some((n) => n.tools.includes(tool))) {
      throw new AoError('AO_GRAPH_UNKNOWN_TOOL', `budget.perTool names "${tool}", which no node of "${def.name}" uses`, { field: `budget.perTool.${tool}` });
    }
    loosens(`budget.perTool.${tool}`, def.budget.perTool?.[tool], cap);
  }
  const perTool = { ...def.budget.perTool, ...o.perTool };
  return parseBudget({ ...def.budget, ...o, ...(Object.keys(perTool).length ? { perTool } : {}) });
}

/** An answer to a wait of a run: POST /runs/:id/signal. */
export interface SignalRequest {
  /** The node whose wait it answers. */
  node: string;
  /** The wait (as listed in the run's `waits`); without it, the node's open wait, or its next one. */
  waitId?: string;
  payload: unknown;
}

export interface SignalResult {
  run: RunRecord;
  signal: SignalRecord;
  /** The wait it answers (null: it came before the node's wait, and the next one takes it). */
  wait: WaitInfo | null;
  /** A repeat of an answer already given (nothing changed). */
  duplicate: boolean;
}

/** Signals a waiting run could take now (their wait is open; an early answer is never a budget decision). */
const answerable = (waits: readonly WaitInfo[], signals: readonly SignalRecord[]): boolean =>
  signals.some((sig) => waits.some((w) => (sig.waitId !== null ? w.id === sig.waitId : w.node === sig.node && w.kind !== 'budget')));

/**
 * A budget decision that cannot work is refused at the door (400), not found out by the run: a
 * fork's budget must be valid over the run's, and a grant may not name amounts for limits the run
 * has no soft limit of.
 */
function checkBudgetAnswer(run: RunRecord, a: BudgetAnswer): void {
  if (a.decision === 'fork') {
    try {
      parseBudget({ ...(run.budget as Budget), ...a.budget }, 'payload.budget');
    } catch (e) {
      const field = isAoError(e) && e.field ? e.field : 'payload.budget';
      throw new AoError('AO_VALIDATION', (e as Error).message, { field });
    }
  }
  if (a.decision === 'grant') {
    const soft = (run.budget as Budget).soft ?? {};
    for (const k of ['tokens', 'tools', 'usd'] as const) {
      if (a[k] !== undefined && soft[k] === undefined) throw new AoError('AO_VALIDATION', `payload.${k}: the run has no soft ${k} limit to raise`, { field: `payload.${k}` });
    }
  }
}

export interface StartRunRequest {
  graph: string;
  input?: unknown;
  /** Overrides of the graph's budget, limit by limit. */
  budget?: Budget;
  /** Whose run it is (the gateway passes the API key's tenant); default `default`. */
  tenant?: string;
  /** Unique per tenant (`Idempotency-Key`), with the hash of the request that carried it. */
  idempotencyKey?: string;
  requestHash?: string;
}

/**
 * A runtime node's engine: registers graphs, starts runs (one run supervisor actor each), hosts
 * them under a lease it renews, and takes over runs whose lease expired (a node that died),
 * resuming them from their latest checkpoint.
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
  private readonly secrets: SecretVault;
  private readonly hosts = new Map<string, RunHost>();
  private readonly clock: Clock;
  private readonly leaseMs: number;
  private readonly loops: NodeJS.Timeout[] = [];
  private claiming: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly started = isoNow(); // wall time, before the clock is set: when this node's process started
  private runsHosted = 0;
  private queueSub: Subscription | undefined;
  private taskSub: Subscription | undefined;
  /** This process's CPU and event-loop delay between heartbeats (GET /nodes). */
  private readonly loadMeter = new LoadMeter();
  /** Follows runs hosted elsewhere by the bus's run signals (absent without them). */
  private readonly watch: RunWatch | undefined;
  /** Since when the bus has been unreachable (leases are not renewed after half a lease of it). */
  private unreachableSince: number | undefined;
  private lettingGo = false;
  /** Runs this node's share of the cluster's node tasks (absent without a cluster, or passive). */
  private readonly tasks: TaskRunner | undefined;
  /** Runs being taken from the queue right now (shutdown waits for them). */
  private readonly taking = new Set<Promise<void>>();
  /** Another process took this node's id: nothing may be written or released under it any more. */
  private lost = false;
  /** Whether the last identity beat failed (logged once per outage). */
  private beatFailing = false;
  private readonly self: ProcessRef;
  /** New runs, inserted together with the others submitted at the same time (group commit). */
  private readonly intake: RunIntake;

  private constructor(private readonly o: EngineOptions) {
    this.graphs = new GraphRegistry((t) => o.tools.has(t));
    this.nodeId = o.identity?.id ?? o.nodeId ?? 'local';
    this.self = o.identity?.self ?? thisProcess();
    this.clock = o.clock ?? systemClock;
    this.leaseMs = o.leaseMs ?? 15_000;
    this.system = createActorSystem();
    this.secrets = new SecretVault(o.store, o.secretKey);
    if (o.bus.watchRuns) this.watch = new RunWatch(o.bus as Bus & Required<Pick<Bus, 'watchRuns'>>);
    this.intake = new RunIntake(o.store);
    for (const g of o.graphs ?? []) this.graphs.register(g as GraphBuilder<unknown>);
    if (o.bus.queue && o.bus.rpc && !o.passive) {
      this.tasks = new TaskRunner({
        nodeId: this.nodeId,
        store: o.store,
        bus: o.bus,
        system: this.system,
        graphs: this.graphs,
        llm: o.llm,
        tools: o.tools,
        secrets: this.secrets,
        clock: this.clock,
        prices: o.prices ?? {},
        leaseMs: this.leaseMs,
      });
    }
  }

  /** Create the engine and resume the runs this node held before a restart or that no node holds. */
  static async create(o: EngineOptions): Promise<Engine> {
    const e = new Engine(o);
    if (!o.passive) await e.claim(true);
    e.startLoops();
    if (o.bus.queue && !o.passive) {
      e.queueSub = o.bus.queue.consume('runs', (p) => e.fromQueue(p));
      await e.queueSub.ready;
    }
    if (e.tasks) {
      const tasks = e.tasks;
      e.taskSub = o.bus.queue!.consume('tasks', (p, info) => tasks.run(p, info), { concurrency: o.taskConcurrency ?? 32 });
      await e.taskSub.ready;
    }
    if (o.bus.membership && !o.passive) await e.beat();
    return e;
  }

  /** Tell the cluster this node is alive (GET /nodes); entries expire without beats. */
  private async beat(): Promise<void> {
    await this.o.bus.membership?.beat(this.nodeInfo());
  }

  get store(): Store {
    return this.o.store;
  }

  /** True for an engine that hosts no runs of its own choosing: a gateway without a runtime node. */
  get passive(): boolean {
    return this.o.passive === true;
  }

  get bus(): Bus {
    return this.o.bus;
  }

  register<I>(g: GraphBuilder<I> | GraphDef<I>): GraphDef<I> {
    return this.graphs.register(g);
  }

  /**
   * A run file under a new id that still replays recorded (`ao import FILE --as ID`): see
   * `Verifier.rename`, here against this engine's graphs, tools and model profiles (whose token
   * counts the budget's reservations used; no model is called).
   */
  async renamedRun(file: RunFile, newId: string): Promise<RunFile> {
    const { Verifier } = await import('./verify/verifier.js');
    const verifier = new Verifier({ graphs: this.graphs.list(), tools: this.o.tools, llm: this.o.llm });
    try {
      return await verifier.rename(file, newId);
    } finally {
      await verifier.close();
    }
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
    const budget = effectiveBudget(def, req.budget);
    const id = randomUUID();
    // The root span id derives from the run id: a node taking the run from the queue rebuilds it.
    const trace = runTraceContext(id, traceIdOf(newTraceContext()));
    const nodes: Record<string, NodeState> = Object.fromEntries(def.nodes.map((n) => [n.id, { status: 'pending', iteration: 0, attempt: 0 }]));
    const queue = this.o.bus.queue;
    const run = await this.intake.create({
      id,
      graph: def.name,
      graphVersion: def.version,
      input,
      budget,
      nodes,
      traceId: traceIdOf(trace) ?? null,
      // In a cluster the run waits for a node to take it from the work queue (the claim loop takes
      // it only if the queue did not hand it out within a lease).
      owner: queue ? QUEUE_OWNER : this.nodeId,
      leaseMs: this.leaseMs,
      ...(req.tenant !== undefined ? { tenant: req.tenant } : {}),
      ...(req.idempotencyKey !== undefined ? { idempotencyKey: req.idempotencyKey, ...(req.requestHash ? { requestHash: req.requestHash } : {}) } : {}),
    });
    meters().runsStarted.add(1, { 'ao.graph': def.name });
    if (queue) {
      await queue.enqueue('runs', run.id, { runId: run.id, trace });
      return run;
    }
    const host = this.host(run, def, trace, {});
    // The run is stored (that is what the caller is told); its first step is written beside the
    // answer, not before it, and only once the submits that came with it are stored too, so a
    // burst of submits does not queue behind every run's writes. If that write fails the lease is
    // given up and the claim loop starts the run again (as after a crash before it).
    void this.intake
      .idle()
      .then(() => (host.stopped ? undefined : this.startHost(host, () => host.begin(def, budget, trace))))
      .catch((e: unknown) => log.error('could not start the run; a claim will start it again', { component: 'engine', nodeId: this.nodeId, runId: run.id, err: e }));
    return run;
  }

  private host(run: RunRecord, def: GraphDef<unknown>, trace: TraceContext, o: { known?: Envelope[]; restored?: CheckpointState; ledger?: Ledger; recording?: Recording; agents?: ResumePlan['agents'] }): RunHost {
    // A resume that was on its way when the id was lost must not start writing under it.
    if (this.lost) throw nodeIdInUse(this.nodeId, undefined, 'lost');
    const host = new RunHost(
      {
        nodeId: this.nodeId,
        store: this.o.store,
        bus: this.o.bus,
        system: this.system,
        llm: this.o.llm,
        tools: this.o.tools,
        secrets: this.secrets,
        clock: this.clock,
        prices: this.o.prices ?? {},
        ...(this.o.stageFlushMs !== undefined ? { stageFlushMs: this.o.stageFlushMs } : {}),
        ...(this.o.maxPayloadBytes !== undefined ? { maxPayloadBytes: this.o.maxPayloadBytes } : {}),
        // In a cluster the run's swarm branches go on the task queue.
        ...(this.o.bus.queue && this.o.bus.rpc ? { tasks: { hostStarted: this.started, silentMs: Math.max(10_000, 2 * this.leaseMs) } } : {}),
        onLost: (h, e) => {
          log.error(`its hosting cannot go on (${(e as Error).message}); giving the run up to be resumed`, { component: 'engine', nodeId: this.nodeId, runId: h.run.id });
          h.stop();
          if (this.hosts.get(h.run.id) === h) this.hosts.delete(h.run.id);
          void this.release([h.run.id]);
        },
        fork: async (id, step, budget, key) => {
          const forkId = envelopeIdFor(id, key);
          if (await this.o.store.getRun(forkId)) return forkId; // made before a crash: the same fork
          return (await this.replay(id, { fromStep: step, mode: 'live', overrides: { budget }, id: forkId })).id;
        },
      },
      run,
      def,
      trace,
      { ...o, onEnd: (h) => this.hosts.get(h.run.id) === h && this.hosts.delete(h.run.id), onPassivated: (h) => void this.afterPassivation(h.run.id) },
    );
    this.hosts.set(run.id, host);
    this.runsHosted += 1;
    return host;
  }

  /** A run handed out by the cluster's work queue: claim it (unless another node has) and host it. */
  private async fromQueue(payload: unknown): Promise<void> {
    const p = z.object({ runId: z.string().min(1).max(128) }).safeParse(payload);
    if (!p.success) throw new AoError('AO_VALIDATION', `a run-queue item must be {runId}: ${p.error.issues[0]?.message}`);
    // Shutting down: hand it back, another node takes it.
    if (this.closed) throw new AoError('AO_INTERNAL', `node ${this.nodeId} is shutting down`);
    if (this.hosts.has(p.data.runId)) return;
    const taking = (async () => {
      const run = await this.o.store.claimRun({ id: p.data.runId, owner: this.nodeId, leaseMs: this.leaseMs, from: QUEUE_OWNER });
      if (!run) return;
      // Shut down meanwhile: give it back at once rather than host it on a stopped actor system.
      if (this.closed) return void (await this.release([run.id]));
      await this.resume(run);
    })();
    this.taking.add(taking);
    try {
      await taking;
    } finally {
      this.taking.delete(taking);
    }
  }

  /** The cluster's nodes (from the bus's membership), or this node alone without one. */
  async nodes(): Promise<NodeInfo[]> {
    return this.o.bus.membership ? this.o.bus.membership.list() : [this.nodeInfo()];
  }

  private nodeInfo(): NodeInfo {
    const load = this.loadMeter.read();
    return {
      id: this.nodeId,
      host: this.self.host,
      pid: this.self.pid,
      started: this.started,
      runsHosted: this.runsHosted,
      activeRuns: this.hosts.size,
      tasksDone: this.tasks?.done ?? 0,
      activeTasks: this.tasks?.active ?? 0,
      runs: [...this.hosts.keys()].slice(0, NODE_RUNS_LISTED),
      load,
      lastHeartbeat: isoNow(this.clock),
    };
  }

  /**
   * Take over runs no live node hosts (and, at start-up, those this node id held before), one at
   * a time, and resume each from its latest checkpoint. Serialised: two claims never overlap.
   */
  private claim(reclaimOwn: boolean): Promise<void> {
    const go = async () => {
      // Batch after batch until none is left: a node restarting after a crash may have held
      // hundreds of runs, and each waiting for the next tick would wait a lease for nothing.
      const tried = new Set<string>(); // not claimed twice in one go, even if its resume failed
      for (let more = true; more; ) {
        // Up to CLAIM_AHEAD batches are claimed and read before any of them is resumed: a resumed
        // run commits at once, and on PGlite (one statement at a time) the claim loop's reads
        // would wait behind those commits (1,000 runs in flight at a crash: ready 4.5 s, not 1.9 s).
        const claimed: Array<{ run: RunRecord; loaded: Loaded | undefined }> = [];
        for (let batch = 0; batch < CLAIM_AHEAD; batch++) {
          // Cut off from the bus, this node could host nothing it takes (see renew).
          if (this.closed || this.o.bus.reachable === false) return;
          const runs = await this.o.store.claimRuns({ owner: this.nodeId, leaseMs: this.leaseMs, limit: CLAIM_BATCH, reclaimOwn, exclude: [...this.hosts.keys(), ...tried] });
          for (const r of runs) tried.add(r.id);
          // What the batch's resumes read (checkpoints, the events since them) in a few reads for all of it.
          let loaded: Map<string, Loaded> = new Map();
          try {
            loaded = await this.loadForResume(runs.filter((r) => r.replay === null));
          } catch (e) {
            log.warn("could not read the claimed runs' checkpoints at once; reading them one by one", { component: 'engine', nodeId: this.nodeId, err: e });
          }
          for (const run of runs) claimed.push({ run, loaded: loaded.get(run.id) });
          if (runs.length < CLAIM_BATCH) {
            more = false;
            break;
          }
        }
        // Then a few resumes at a time.
        let next = 0;
        const worker = async () => {
          while (next < claimed.length) {
            const { run, loaded } = claimed[next++]!;
            try {
              await this.resume(run, loaded);
            } catch (e) {
              log.error('could not resume the run', { component: 'engine', nodeId: this.nodeId, runId: run.id, err: e });
            }
          }
        };
        await Promise.all(Array.from({ length: Math.min(RESUME_CONCURRENCY, claimed.length) }, worker));
      }
    };
    this.claiming = this.claiming.then(go, go);
    return this.claiming;
  }

  /**
   * The reads of many resumes at once: each run's latest checkpoint and first envelope, the start
   * messages its checkpoint names, and its events since the earlier of the two (four reads for
   * the whole batch instead of four a run).
   */
  private async loadForResume(runs: RunRecord[]): Promise<Map<string, Loaded>> {
    const ids = runs.map((r) => r.id);
    const [cps, firsts] = await Promise.all([this.o.store.latestCheckpoints(ids), this.o.store.firstEvents(ids)]);
    const startIds = new Map<string, string[]>();
    for (const [id, cp] of cps) {
      const live = (cp.state as { live?: Array<{ startId?: unknown }> } | null)?.live;
      startIds.set(id, Array.isArray(live) ? live.map((l) => l.startId).filter((x): x is string => typeof x === 'string') : []);
    }
    const starts = await this.o.store.eventsById([...startIds].flatMap(([runId, list]) => list.map((id) => ({ runId, id }))));
    const byRun = new Map<string, Envelope[]>();
    for (const e of starts) byRun.set(e.runId, [...(byRun.get(e.runId) ?? []), e]);
    // The turn records since the live children started: agents among them go on from their resume points.
    const withStarts = ids.filter((id) => byRun.get(id)?.length);
    const records = withStarts.length && this.o.store.turnsSince ? await this.o.store.turnsSince(withStarts.map((id) => ({ runId: id, from: Math.min(...byRun.get(id)!.map((e) => e.seq)) }))) : new Map<string, StoredTurn[]>();
    const plans = new Map(ids.map((id) => [id, resumePlan(id, cps.get(id)?.seq ?? 0, byRun.get(id) ?? [], records.get(id) ?? [])]));
    const ranges = ids.map((id) => ({ runId: id, after: plans.get(id)!.after }));
    const known = await this.o.store.eventsAfter(ranges, { bases: new Map([...plans.values()].flatMap((p) => [...p.bases])) });
    return new Map(ranges.map(({ runId: id, after }) => [id, { checkpoint: cps.get(id), first: firsts.get(id), starts: byRun.get(id) ?? [], after, known: known.get(id) ?? [], plan: plans.get(id)! }]));
  }

  private async resume(run: RunRecord, loaded?: Loaded): Promise<void> {
    // A replay that has written only its first event has not started: deliveries follow the original's order.
    const o = { freshReplay: run.replay !== null && run.lastSeq <= 1 };
    // Nothing logged yet (a run fresh from the queue): no first event, checkpoint or log to read.
    const blank = !loaded && run.lastSeq === 0 && run.replay === null;
    const first = loaded ? loaded.first : blank ? undefined : (await this.o.store.listEvents(run.id, { limit: 1 }))[0];
    const trace: TraceContext = first?.trace ?? runTraceContext(run.id, run.traceId);
    const registered = this.graphs.get(run.graph);
    if (!registered) return this.park(run, { code: 'AO_GRAPH_NOT_FOUND', message: `graph "${run.graph}" is not registered on node "${this.nodeId}"` });
    if (run.cancelRequested) return this.end(run, 'cancelled', { code: 'AO_RUN_CANCELLED', message: 'cancelled while no node hosted it' });
    const def = run.replay ? graphWithOverrides(registered, run.replay.overrides, (t) => this.o.tools.has(t)) : registered;
    const cp = loaded ? loaded.checkpoint : blank ? undefined : await this.o.store.latestCheckpoint(run.id);
    let restored: CheckpointState | undefined;
    if (cp) {
      let state: unknown = cp.state;
      if (run.graphVersion !== def.version) {
        const migrate = def.migrations[run.graphVersion];
        if (!migrate) {
          return this.park(run, {
            code: 'AO_GRAPH_VERSION_CHANGED',
            message: `run is pinned to version ${run.graphVersion} of "${run.graph}", this node has ${def.version}, which declares no compatibility with it`,
          });
        }
        state = migrate(state);
      }
      const parsed = CheckpointStateSchema.safeParse(state);
      if (!parsed.success) throw new AoError('AO_STORE_CORRUPT', `checkpoint ${cp.step} of run ${run.id}: ${parsed.error.issues[0]?.message}`);
      restored = parsed.data;
    } else if (run.graphVersion !== def.version && !def.migrations[run.graphVersion]) {
      return this.park(run, { code: 'AO_GRAPH_VERSION_CHANGED', message: `run is pinned to version ${run.graphVersion}, this node has ${def.version}` });
    }
    // What a crash may have interrupted: the start messages of the live children and everything
    // logged since the earliest of them (their re-runs emit those again, under the same ids).
    const wanted = restored?.live.map((l) => l.startId) ?? [];
    // Read with the batch, unless a migration changed which children are live (read them again).
    const same = loaded && loaded.starts.length === wanted.length && loaded.starts.every((e) => wanted.includes(e.id));
    const starts = same ? loaded.starts : restored ? await this.o.store.getEvents(run.id, wanted) : [];
    // Agents among the live children that left resume points go on from there: not a replay's (its
    // actors read its original), nor a migrated run's (its agents run again on the new version).
    const migrated = run.graphVersion !== def.version;
    const plan = same && !migrated ? loaded.plan : migrated ? resumePlan(run.id, cp?.seq ?? 0, starts, []) : await this.planResume(run, cp?.seq ?? 0, starts);
    const from = plan.after;
    const known = loaded && loaded.after === from ? loaded.known : blank ? [] : (await this.o.store.eventsAfter([{ runId: run.id, after: from }], { bases: plan.bases })).get(run.id)!;
    const recording = run.replay ? await loadRecording(this.o.store, run, run.replay, restored, { ordered: o.freshReplay === true }) : undefined;
    if (recording && !o.freshReplay) recording.advance(await this.o.store.listEvents(run.id, { limit: 10_000_000 }), restored?.step ?? 0);
    // A replay's children that were live at its step started in the original: their start messages are inherited.
    for (const l of restored?.live ?? []) {
      if (starts.some((e) => e.id === l.startId)) continue;
      const inherited = recording?.inherited(`${SUPERVISOR_PATH}/${l.name}/start`);
      if (inherited) starts.push({ ...inherited, id: l.startId, runId: run.id });
    }
    const ledger = restored ? await this.restoredLedger(run, def, restored, cp!.seq, known, plan) : undefined;
    // The agents' next requests continue their last ones (stored as what they add).
    if (plan.last.size) this.o.store.primeRequests?.(run.id, plan.last);
    const host = this.host(run, def, trace, { known, ...(ledger ? { ledger } : {}), ...(recording ? { recording } : {}), ...(restored ? { restored } : {}), ...(plan.agents.size ? { agents: plan.agents } : {}) });
    await this.startHost(host, async () => {
      if (run.graphVersion !== def.version) {
        await host.journal.append(
          [draft({ runId: run.id, trace }, { from: SUPERVISOR_PATH, to: SUPERVISOR_PATH, type: 'run.migrated', payload: { from: run.graphVersion, to: def.version }, causationId: null, key: `migrated/${def.version}` })],
          { patch: { graphVersion: def.version } },
        );
      }
      if (restored) host.resume(starts);
      else await host.begin(def, run.budget as Budget, trace);
    });
  }

  /**
   * Start a host; if that fails (the bus or the store), let the run go (stop the host, give up the
   * lease) so the queue or a claim starts it again.
   */
  private async startHost(host: RunHost, start: () => Promise<void>): Promise<void> {
    try {
      await start();
    } catch (e) {
      host.stop();
      if (this.hosts.get(host.run.id) === host) this.hosts.delete(host.run.id);
      await this.release([host.run.id]);
      throw e;
    }
  }

  /** A run's resume plan, read now (a run resumed alone, or whose live children a migration changed); a replay's has no resume points. */
  private async planResume(run: RunRecord, cpSeq: number, starts: Envelope[]): Promise<ResumePlan> {
    const records = run.replay === null && starts.length && this.o.store.turnsSince ? ((await this.o.store.turnsSince([{ runId: run.id, from: Math.min(...starts.map((e) => e.seq)) }])).get(run.id) ?? []) : [];
    return resumePlan(run.id, cpSeq, starts, records);
  }

  /**
   * The budget ledger as of the last committed event: the checkpoint's, or a later resume
   * point's, plus what came after it (or, for old checkpoints, a fold of the whole history).
   */
  private async restoredLedger(run: RunRecord, def: GraphDef<unknown>, restored: CheckpointState, cpSeq: number, known: Envelope[], plan: ResumePlan): Promise<Ledger> {
    const { wallClockSec: _clock, ...limits } = run.budget as Budget;
    const start = newLedger(limits, nodeLimitsOf(def));
    if (plan.ledger) {
      const { usage, ...at } = plan.ledger.state;
      return foldLedger({ ...start, ...at, usage }, known.filter((e) => e.seq > plan.ledger!.seq && isLedgerEvent(e.type)));
    }
    if (!restored.ledger) {
      const [budget, answers] = await Promise.all([this.o.store.listEventsOfType(run.id, 'budget.'), this.o.store.listEventsOfType(run.id, 'llm.response')]);
      return foldLedger(start, [...budget, ...answers].sort((a, b) => a.seq - b.seq));
    }
    // The checkpoint's usage is its ledger's (checkpoints written before: what its nodes had reported).
    return foldLedger({ ...start, ...restored.ledger, usage: restored.usage }, known.filter((e) => e.seq > cpSeq && isLedgerEvent(e.type)));
  }

  /**
   * Replay a run from checkpoint `fromStep` as a new run linked to it: restored as it was at that
   * step (supervisor state, live children with their start messages, budget ledger), nothing
   * before the step runs again. `live` makes calls after it for real; `recorded` serves the
   * original's results and fails at the first decision that differs; `lenient` serves them until
   * the first difference, then goes on live. `overrides` make it a fork.
   */
  async replay(id: string, req: ReplayRequest): Promise<RunRecord> {
    if (this.closed) throw new AoError('AO_INTERNAL', 'engine is shut down');
    const original = await this.o.store.getRun(id);
    if (!original) throw new AoError('AO_RUN_NOT_FOUND', `no run ${id}`, { field: 'id' });
    const registered = this.graphs.get(original.graph);
    if (!registered) throw new AoError('AO_GRAPH_NOT_FOUND', `graph "${original.graph}" of run ${id} is not registered`, { field: 'graph' });
    const overrides = req.overrides && Object.keys(req.overrides).length ? req.overrides : null;
    const def = graphWithOverrides(registered, overrides, (t) => this.o.tools.has(t));
    const cp = await replayCheckpoint(this.o.store, original, def, req.fromStep);
    let input = overrides && 'input' in overrides ? overrides.input : original.input;
    if (def.inputSchema && overrides && 'input' in overrides) {
      const r = def.inputSchema.safeParse(input);
      if (!r.success) throw new AoError('AO_VALIDATION', `overrides.input: ${r.error.issues[0]?.message}`, { field: zodIssuePath(r.error.issues[0], 'overrides.input') ?? 'overrides.input' });
      input = r.data;
    }
    const budget = budgetWithOverrides(original.budget as Budget, overrides);
    const info: ReplayInfo = { of: id, fromStep: req.fromStep, mode: req.mode ?? 'live', overrides, baseSeq: cp?.seq ?? 0, originalVersion: original.graphVersion, divergence: null };
    const trace = newTraceContext();
    const run = await this.o.store.createRun({
      id: req.id ?? randomUUID(),
      graph: def.name,
      graphVersion: def.version,
      input,
      budget,
      nodes: cp ? cp.state.sched.nodes : Object.fromEntries(def.nodes.map((n) => [n.id, { status: 'pending', iteration: 0, attempt: 0 } as NodeState])),
      traceId: traceIdOf(trace) ?? null,
      owner: this.o.bus.queue ? QUEUE_OWNER : this.nodeId,
      leaseMs: this.leaseMs,
      replay: info,
    });
    const { divergence: _d, ...header } = info;
    const journal = new RunJournal(this.o.store, this.o.bus, run.id, run.lastSeq);
    // Served from the original (recorded, or lenient until it diverges) under its budget: it goes on as the original did.
    const asRecorded = info.mode !== 'live' && !overrides?.budget;
    const start = cp ? await replayStartState(this.o.store, original, def, budget, cp, this.clock.now(), { asRecorded }) : undefined;
    await journal.append([draft({ runId: run.id, trace }, { from: SUPERVISOR_PATH, to: SUPERVISOR_PATH, type: 'run.replayed', payload: header, causationId: null, key: 'run.replayed' })], {
      ...(start
        ? {
            // The replay's own copy of the checkpoint it starts from: a crash before its next step resumes from it.
            checkpoint: {
              step: req.fromStep,
              node: cp!.node,
              graphVersion: def.version,
              state: { ...start, live: start.live.map((l) => ({ ...l, startId: journal.idOf(`${SUPERVISOR_PATH}/${l.name}/start`) })) },
            },
            patch: { status: 'running', startedAt: isoNow(this.clock), usage: start.usage },
          }
        : {}),
    });
    await journal.flush(); // published before its host writes after it
    meters().runsStarted.add(1, { 'ao.graph': def.name, replay: true });
    if (this.o.bus.queue) await this.o.bus.queue.enqueue('runs', run.id, { runId: run.id });
    else await this.resume((await this.o.store.getRun(run.id))!);
    return (await this.o.store.getRun(run.id))!;
  }

  /** Where two runs first differ (actor by actor) and their per-node output differences. */
  async diff(a: string, b: string): Promise<Awaited<ReturnType<typeof diffRuns>>> {
    const [ra, rb] = await Promise.all([this.o.store.getRun(a), this.o.store.getRun(b)]);
    if (!ra) throw new AoError('AO_RUN_NOT_FOUND', `no run ${a}`, { field: 'a' });
    if (!rb) throw new AoError('AO_RUN_NOT_FOUND', `no run ${b}`, { field: 'b' });
    return diffRuns(this.o.store, ra, rb);
  }

  /**
   * Answer a wait of a run (an approval, an agent's question). The answer is validated against the
   * wait's schema and stored before anything else, so it is never lost: a run that sleeps is woken
   * (here, or through the cluster's queue), a run hosted here takes it at once, a run hosted on
   * another node takes it when that node renews its lease. An answer for a node whose wait is not
   * open yet is kept for it. A second answer to the same wait is a no-op (`duplicate`).
   */
  async signal(id: string, req: SignalRequest): Promise<SignalResult> {
    const run = await this.o.store.getRun(id);
    if (!run) throw new AoError('AO_RUN_NOT_FOUND', `no run ${id}`, { field: 'id' });
    if (TERMINAL_STATUSES.has(run.status)) throw new AoError('AO_RUN_NOT_WAITING', `run ${id} has ended (${run.status}); it waits for nothing`, { field: 'id' });
    const def = this.graphs.get(run.graph);
    const node = def?.node(req.node);
    if (!def || !node) throw new AoError('AO_VALIDATION', `graph "${run.graph}" has no node "${req.node}"`, { field: 'node' });
    const waitingFor = () => (run.waits.length ? `it waits for: ${run.waits.map((w) => `${w.node} (${w.kind} ${w.id})`).join(', ')}` : 'it waits for nothing');
    const wait = run.waits.find((w) => w.node === req.node && (req.waitId === undefined || w.id === req.waitId)) ?? null;
    if (!wait && req.waitId !== undefined) {
      // Answered before (a double click after the first answer was taken): the first one stands.
      const prior = await this.o.store.getSignal(id, req.waitId);
      if (prior && prior.node === req.node) return { run, signal: prior, wait: null, duplicate: true };
    }
    const kind: WaitInfo['kind'] | undefined = wait?.kind ?? (node.approval ? 'approval' : node.interrupt ? 'interrupt' : undefined);
    if (!wait) {
      // Kept for a wait still to come only if the node can still ask: an approval not yet reached,
      // a question from a node that has not finished.
      const status = run.nodes[req.node]?.status ?? 'pending';
      const mayAsk = req.waitId === undefined && (kind === 'approval' ? status === 'pending' || status === 'waiting' : kind === 'interrupt' ? status === 'pending' || status === 'running' || status === 'retrying' || status === 'waiting' : false);
      if (!mayAsk || run.status === 'waiting') {
        throw new AoError('AO_RUN_NOT_WAITING', `run ${id} is not waiting for an answer from node "${req.node}"${req.waitId !== undefined ? ` (wait ${req.waitId})` : ''}; ${waitingFor()}`, { field: 'node' });
      }
    }
    const parsed = answerSchema(def, req.node, kind!).safeParse(req.payload);
    if (!parsed.success) {
      const field = zodIssuePath(parsed.error.issues[0], 'payload') ?? 'payload';
      throw new AoError('AO_VALIDATION', `${field}: ${parsed.error.issues[0]?.message}`, { field });
    }
    if (wait?.kind === 'budget') checkBudgetAnswer(run, parsed.data as BudgetAnswer);
    const { signal, duplicate } = await this.o.store.addSignal({ id: randomUUID(), runId: id, node: req.node, waitId: wait?.id ?? null, payload: parsed.data });
    // An answer to an open wait wakes the run; an early one (or a repeat) may have become
    // answerable while it was stored (the run opened the wait and fell asleep meanwhile).
    if (!duplicate && wait) await this.wake(id);
    else await this.wakeIfAnswerable(id);
    return { run: (await this.o.store.getRun(id)) ?? run, signal, wait, duplicate };
  }

  /** Wake a sleeping run that has an answer it can take now. */
  private async wakeIfAnswerable(id: string): Promise<void> {
    const [run, pending] = await Promise.all([this.o.store.getRun(id), this.o.store.pendingSignals(id)]);
    if (run && run.status === 'waiting' && answerable(run.waits, pending)) await this.wake(id);
  }

  /**
   * An answer came for a run: its host here takes it now; a sleeping run is woken (one waker wins)
   * and resumed here or, in a cluster, by whichever node takes it from the queue. A run hosted on
   * another node takes the answer when that node renews its lease.
   */
  private async wake(id: string): Promise<void> {
    const host = this.hosts.get(id);
    if (host && !host.stopped) return host.signals();
    const queue = this.o.bus.queue;
    const run = await this.o.store.wakeRun({ id, owner: queue ? QUEUE_OWNER : this.nodeId, leaseMs: this.leaseMs });
    if (!run) return;
    if (queue) return void (await queue.enqueue('runs', id, { runId: id }));
    // Even a passive engine (the CLI's embedded one) hosts the run its own answer woke.
    if (this.closed) return void (await this.release([id]));
    // Resumed beside the answer (the caller is told it is stored): a failure gives the run back to the claim loop.
    this.resume(run).catch((e: unknown) => log.error('could not resume the run after an answer', { component: 'engine', nodeId: this.nodeId, runId: id, err: e }));
  }

  /** A run went to sleep: an answer that came while it was going is taken now (otherwise nobody would wake it). */
  private async afterPassivation(id: string): Promise<void> {
    try {
      await this.wakeIfAnswerable(id);
    } catch (e) {
      log.error('could not check the run for answers after it went to sleep', { component: 'engine', nodeId: this.nodeId, runId: id, err: e });
    }
  }

  /** Close a run that is not hosted here with a final status (no actor runs it), with its root span. */
  private async end(run: RunRecord, status: 'cancelled' | 'failed', error: ErrorInfo): Promise<void> {
    await this.writeUnhosted(run, 'run.finished', { status, error, usage: run.usage }, 'run.finished', { status, error, finishedAt: isoNow(this.clock), waits: [], wakeAt: null });
    emitRunSpan({
      trace: (await this.o.store.listEvents(run.id, { limit: 1 }))[0]?.trace ?? runTraceContext(run.id, run.traceId),
      startTime: Date.parse(run.startedAt ?? run.createdAt),
      attributes: { 'ao.run.id': run.id, 'ao.graph': run.graph, 'ao.graph.version': run.graphVersion, 'ao.run.status': status, ...(run.replay ? { replay: true } : {}) },
      error,
    });
    meters().runsFinished.add(1, { 'ao.graph': run.graph, status, ...(run.replay ? { replay: true } : {}) });
  }

  /** Stop a run for a person to decide (status `waiting`, with the reason), releasing its lease. */
  private park(run: RunRecord, error: ErrorInfo): Promise<void> {
    return this.writeUnhosted(run, 'run.parked', { error }, `parked/${error.code}/${run.lastSeq}`, { status: 'waiting', error });
  }

  /** One last event of a run no actor hosts, with the run row's new state, and its lease given up. */
  private async writeUnhosted(run: RunRecord, type: string, payload: unknown, key: string, patch: RunPatch): Promise<void> {
    const journal = new RunJournal(this.o.store, this.o.bus, run.id, run.lastSeq);
    await journal.append([draft({ runId: run.id, trace: null }, { from: SUPERVISOR_PATH, to: SUPERVISOR_PATH, type, payload, causationId: null, key })], {
      patch: { ...patch, releaseLease: true },
    });
    await journal.flush(); // published before anyone may write after it
  }

  /**
   * Cancel a run: the hosting node stops its actor tree (in-flight calls are aborted) and ends it
   * `cancelled`. Any node may take the request; the host sees the flag when it renews its lease.
   */
  async cancel(id: string, reason = 'cancelled by request'): Promise<RunRecord> {
    const run = await this.o.store.getRun(id);
    if (!run) throw new AoError('AO_RUN_NOT_FOUND', `no run ${id}`, { field: 'id' });
    if (TERMINAL_STATUSES.has(run.status)) throw new AoError('AO_RUN_NOT_ACTIVE', `run ${id} already ended ${run.status}`, { field: 'id' });
    const host = this.hosts.get(id);
    if (host) {
      host.cancel(reason);
      await host.done;
    } else if (run.status === 'waiting' && !run.owner) {
      await this.end(run, 'cancelled', { code: 'AO_RUN_CANCELLED', message: reason });
    } else {
      await this.o.store.requestCancel(id);
    }
    return (await this.o.store.getRun(id))!;
  }

  private startLoops(): void {
    const every = (ms: number, fn: () => Promise<void>) => {
      const t = setInterval(() => void fn().catch((e) => log.error('a periodic task failed', { component: 'engine', nodeId: this.nodeId, err: e })), ms);
      t.unref();
      this.loops.push(t);
    };
    every(Math.max(50, Math.floor(this.leaseMs / 3)), () => this.renew());
    if (!this.o.passive) every(this.o.claimIntervalMs ?? Math.max(100, Math.floor(this.leaseMs / 2)), () => this.claim(false));
    if (this.o.bus.membership && !this.o.passive) every(2_000, () => this.beat());
    if (this.o.identity) every(beatIntervalMs(this.o.identity.staleMs), () => this.beatIdentity());
    const sweepMs = this.o.sweepIntervalMs ?? 60_000;
    if (sweepMs > 0) every(sweepMs, () => this.sweep().then(() => undefined));
  }

  /** Renew the leases of hosted runs; act on cancel requests; stop hosting a run whose lease was lost. */
  private async renew(): Promise<void> {
    const ids = [...this.hosts.keys()];
    if (!ids.length) return;
    // Cut off from the bus for half a lease, this node can move none of its runs on (nothing it
    // writes reaches their actors or tasks): it stops renewing, so other nodes take them over, and
    // its own commits are fenced from then on. It sees which it lost when it renews again.
    if (this.o.bus.reachable === false) {
      this.unreachableSince ??= systemClock.now(); // wall time, as the renewal loop's timer and the leases
      if (systemClock.now() - this.unreachableSince > this.leaseMs / 2) {
        if (!this.lettingGo) log.warn(`the bus is unreachable: not renewing the leases of ${ids.length} run(s), so other nodes take them over`, { component: 'engine', nodeId: this.nodeId });
        this.lettingGo = true;
        return;
      }
    } else {
      this.unreachableSince = undefined;
      this.lettingGo = false;
    }
    const { renewed, cancelRequested, signalled } = await this.o.store.renewLeases(this.nodeId, ids, this.leaseMs);
    const kept = new Set(renewed);
    for (const id of ids) {
      const h = this.hosts.get(id);
      if (!h) continue;
      // Fencing: another node took the run over (our lease had expired): stop writing to it.
      if (!kept.has(id)) {
        log.warn('lost the lease of the run; stopped hosting it', { component: 'engine', nodeId: this.nodeId, runId: id });
        h.stop();
        this.hosts.delete(id);
      }
    }
    for (const id of cancelRequested) this.hosts.get(id)?.cancel('cancelled by request');
    for (const id of signalled) void this.hosts.get(id)?.signals().catch((e: unknown) => log.error('could not take the run\'s signals', { component: 'engine', nodeId: this.nodeId, runId: id, err: e }));
  }

  /** Apply every graph's retention policy to its finished runs. */
  async sweep(): Promise<{ runs: number; checkpoints: number }> {
    const total = { runs: 0, checkpoints: 0 };
    for (const g of this.graphs.list()) {
      if (g.retention.keepCheckpoints === undefined && g.retention.ttlSec === undefined) continue;
      const r = await this.o.store.sweep(g.name, g.retention);
      total.runs += r.runs;
      total.checkpoints += r.checkpoints;
    }
    return total;
  }

  getRun(id: string): Promise<RunRecord | undefined> {
    return this.o.store.getRun(id);
  }

  listRuns(q: ListRunsQuery): Promise<{ runs: RunRecord[]; next: string | null }> {
    return this.o.store.listRuns(q);
  }

  /** The run's cost ledger rolled up (totals, in flight, per node, actor and model), or undefined for an unknown run. */
  async usage(runId: string): Promise<UsageReport | undefined> {
    const run = await this.o.store.getRun(runId);
    if (!run) return undefined;
    const def = this.graphs.get(run.graph);
    const [events, runEvents] = await Promise.all([this.o.store.listEventsOfType(run.id, 'budget.'), this.o.store.listEventsOfType(run.id, 'run.')]);
    const report = usageReport(def ?? ({ nodes: [] } as unknown as GraphDef<unknown>), run.budget as Budget, events);
    const wallClock = wallClockUse(runEvents, this.clock.now());
    return wallClock ? { ...report, wallClock } : report;
  }

  /**
   * Where a run's steps and branches ran, from the `ranOn` of their last words, each node in order
   * of first appearance: its host (or hosts, after a failover) and the nodes that ran its tasks.
   * Empty without a cluster (nothing is named there) and for a replay (it runs on its host).
   */
  async ranOn(runId: string): Promise<ReturnType<typeof ranOnSummary>> {
    if (!this.o.bus.queue) return [];
    return ranOnSummary(await this.o.store.listEventsOfType(runId, ''));
  }

  listEvents(runId: string, q: { after?: number; limit: number }): Promise<Envelope[]> {
    return this.o.store.listEvents(runId, q);
  }

  /**
   * Resolves with the run once it is no longer hosted here (finished, parked), or its status now.
   * A run hosted elsewhere in a cluster is followed by push: its row is read once when the
   * following has begun, then again only when a run signal says it ended (or parked, or waits),
   * when the bus says signals may have been lost (it reconnected), when this node takes the run,
   * and every {@link EngineOptions.followResyncMs} as a last resort (a host that died between its
   * last commit and the signal of it). It is never polled while the run is under way.
   */
  async waitForRun(id: string, timeoutMs = 60_000): Promise<RunRecord> {
    const host = this.hosts.get(id);
    if (host) {
      let t: NodeJS.Timeout | undefined;
      await Promise.race([
        host.done,
        new Promise((_, rej) => (t = setTimeout(() => rej(new Error(`run ${id} did not finish in ${timeoutMs} ms`)), timeoutMs))),
      ]).finally(() => clearTimeout(t));
    }
    const missing = () => new AoError('AO_RUN_NOT_FOUND', `no run ${id}`, { field: 'id' });
    // Following by the shared watch costs a map entry: it begins before the first read, which is
    // then the only one unless a signal comes. Following by a subscription of the run's envelopes
    // (a bus without signals) costs a consumer: the row is read first, to see if it is needed.
    const byWatch = this.o.bus.queue !== undefined && !host && this.watch !== undefined;
    let run: RunRecord | undefined;
    if (!byWatch) {
      run = await this.o.store.getRun(id);
      if (!run) throw missing();
      if (!this.o.bus.queue || host || settled(run)) return run;
    }
    const end = systemClock.now() + timeoutMs; // wall time: the timeout's timers are real ones
    const resyncMs = this.o.followResyncMs ?? FOLLOW_RESYNC_MS;
    // `signalled` keeps a word that came during a read, which `poke` (set only while waiting) would miss.
    let signalled = false;
    let poke: () => void = () => undefined;
    const onWord = (type: string) => {
      if (type !== SIGNAL_GAP && !RUN_ENDS.has(type)) return;
      signalled = true;
      poke();
    };
    let stop: () => void;
    if (this.watch) {
      stop = await this.watch.follow(id, onWord);
    } else {
      const sub = this.o.bus.subscribe(id, (env) => onWord(env.type));
      stop = () => sub.unsubscribe();
      await within(Math.max(1, end - systemClock.now()), sub.ready);
    }
    try {
      run = await this.o.store.getRun(id);
      if (!run) throw missing();
      while (!settled(run)) {
        if (systemClock.now() > end) throw new Error(`run ${id} did not finish in ${timeoutMs} ms`);
        if (!signalled) {
          const woken = new Promise<void>((r) => (poke = r));
          const local = this.hosts.get(id);
          let t: NodeJS.Timeout | undefined;
          await Promise.race([woken, ...(local ? [local.done] : []), new Promise((r) => (t = setTimeout(r, Math.max(1, Math.min(resyncMs, end - systemClock.now())))))]).finally(() => clearTimeout(t));
        }
        signalled = false;
        const now = await this.o.store.getRun(id);
        if (!now) throw new AoError('AO_RUN_NOT_FOUND', `run ${id} was deleted while waiting for it`, { field: 'id' });
        run = now;
      }
    } finally {
      stop();
    }
    return run;
  }

  /** Runs this node hosts right now. */
  activeRuns(): string[] {
    return [...this.hosts.keys()];
  }

  /** Live actors of a hosted run (0 when not hosted here). */
  liveActors(runId: string): number {
    return this.hosts.get(runId)?.liveActors() ?? 0;
  }

  /**
   * Stop hosting: stop every actor, then give up the leases so another node (or this one,
   * restarted) resumes the runs from their checkpoints at once.
   */
  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.loops) clearInterval(t);
    this.queueSub?.unsubscribe();
    this.taskSub?.unsubscribe();
    this.watch?.close();
    this.loadMeter.close();
    // Node tasks running here go back to the queue (another node runs them).
    await this.tasks?.shutdown();
    // Bounded: with the bus or the store down these could wait for ever, and a node told to stop must stop.
    await within(5_000, Promise.all([this.claiming, ...this.taking]));
    if (!this.o.passive) await within(2_000, this.o.bus.membership?.leave(this.nodeId));
    const ids = [...this.hosts.keys()];
    // What the runs staged is committed before their actors stop (a model's answer is not paid for twice).
    await within(5_000, Promise.all([...this.hosts.values()].map((h) => h.journal.flush())));
    for (const h of this.hosts.values()) h.stop();
    this.system.shutdown();
    await within(5_000, Promise.all([...this.hosts.values()].map((h) => h.journal.flush())));
    this.hosts.clear();
    await this.release(ids);
    await within(5_000, this.o.identity?.release());
  }

  /**
   * Give up leases, unless this node's id was taken over: the leases under it are the new
   * holder's then (the same owner id), and releasing them would hand its runs to anyone.
   */
  private async release(ids: string[]): Promise<void> {
    if (this.lost || !ids.length) return;
    await this.o.store.releaseLeases(this.nodeId, ids).catch(() => undefined);
  }

  /** Keep this node's id; if another process has taken it, stop at once (see `EngineOptions.identity`). */
  private async beatIdentity(): Promise<void> {
    const identity = this.o.identity;
    if (!identity || this.closed) return;
    let kept: boolean;
    try {
      kept = await identity.beat();
    } catch (e) {
      // The store is unreachable: leases cannot be renewed either. The id stays ours unless the
      // outage outlasts the lease and another process takes it; the next beat tells.
      if (!this.beatFailing) log.warn(`could not beat its node id (retrying): ${(e as Error).message}`, { component: 'engine', nodeId: this.nodeId });
      this.beatFailing = true;
      return;
    }
    this.beatFailing = false;
    if (!kept && !this.closed) await this.identityLost(identity);
  }

  /**
   * Another process holds this node's id: it has (or will have at once) every run and lease under
   * it. Stop every actor without writing or releasing anything (what they staged is dropped and
   * re-derived by the new holder), stop taking work, and tell the owner of the process.
   */
  private async identityLost(identity: NodeIdentity): Promise<void> {
    this.lost = true;
    this.closed = true;
    for (const t of this.loops) clearInterval(t);
    this.queueSub?.unsubscribe();
    this.taskSub?.unsubscribe();
    for (const h of this.hosts.values()) h.stop();
    this.hosts.clear();
    identity.abandon();
    const error = nodeIdInUse(this.nodeId, await identity.holder().catch(() => undefined), 'lost');
    log.error(`${error.code}: ${error.message}`, { component: 'engine', nodeId: this.nodeId });
    await this.tasks?.shutdown();
    this.system.shutdown();
    this.o.onIdentityLost?.(error);
  }
}
