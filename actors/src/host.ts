import type { Budget, GraphDef } from '@ao/graphs';
import { actorPath, RunJournal } from '@ao/runtime';
import { isoNow, log } from '@ao/runtime';
import { AoError } from '@ao/graphs';
import { randomUUID } from 'node:crypto';
import type {
  ActorPath,
  ActorRef,
  ActorSystem,
  AgentRestore,
  Bus,
  Clock,
  Envelope,
  Recording,
  RunRecord,
  SecretVault,
  Store,
  ToolRegistry,
  TraceContext,
} from '@ao/runtime';
import { foldLedger, isLedgerEvent } from './budget/budget-actor.js';
import { newLedger } from './budget/ledger.js';
import type { Ledger, PriceTable } from './budget/ledger.js';
import { nodeLimitsOf } from './budget/usage.js';
import type { CheckpointState } from './run-supervisor/checkpoint.js';
import { fromRunSupervisor, SUPERVISOR_PATH } from './run-supervisor/run-supervisor.js';
import { draft } from './services.js';
import { runEnded } from './telemetry.js';
import type { ActorMessage, LlmResolver, RunServices } from './services.js';
import { HostTasks } from './tasks/host-tasks.js';
import { Replies } from './tasks/replies.js';
import { ranOnJournal } from './tasks/ran-on.js';

export interface HostDeps {
  /** This runtime node: the owner its commits must still be (fencing). */
  nodeId?: string;
  prices: PriceTable;
  store: Store;
  bus: Bus;
  system: ActorSystem;
  llm: LlmResolver;
  tools: ToolRegistry;
  secrets: SecretVault;
  clock: Clock;
  /** Fork a run from a checkpoint with a new budget (the engine's replay): the fork's id. */
  fork?: (runId: string, step: number, budget: Record<string, unknown>, key: string) => Promise<string>;
  /**
   * In a cluster: node executions and swarm branches go on the task queue, and any node runs them
   * (`hostStarted`: when this node started, which tells its incarnations apart).
   */
  tasks?: { hostStarted: string; silentMs: number };
  /** How long a staged envelope may wait for the run's next commit (the journal's default otherwise). */
  stageFlushMs?: number;
  /** The largest payload an envelope may carry, in bytes (the journal's default otherwise: 8 MiB). */
  maxPayloadBytes?: number;
  /** This hosting must end at once (a task could not be handed out, a commit's outcome is unknown): the engine gives the run up. */
  onLost?: (host: RunHost, e: unknown) => void;
}

/** How a host starts: fresh, or restored (`known`, `restored`, `ledger`, `agents`); told when it ends. */
export interface RunHostOptions {
  known?: Envelope[];
  restored?: CheckpointState;
  ledger?: Ledger;
  recording?: Recording;
  agents?: ReadonlyMap<string, AgentRestore>;
  onEnd: (host: RunHost) => void;
  onPassivated?: (host: RunHost) => void;
}

/** The budget's envelopes among `fresh`: what the ledger folds. */
const budgetOf = (fresh: readonly Envelope[]) => fresh.filter((e) => isLedgerEvent(e.type));

/** Each restored agent goes on from its resume point once, in the execution that left it. */
function restoredAgents(restores: ReadonlyMap<string, AgentRestore> | undefined): Pick<RunServices, 'restoredAgent'> {
  if (!restores) return {};
  const agents = new Map(restores);
  return {
    restoredAgent: (path: ActorPath, start: string) => {
      const r = agents.get(path);
      if (r?.state.start !== start) return undefined;
      agents.delete(path);
      return r;
    },
  };
}

/**
 * One run hosted on this node: its journal, the routes from bus envelopes to its actors, and its
 * run supervisor. Started fresh, or restored from a checkpoint with the envelopes the crash
 * interrupted (`known`), which the journal recognises and re-delivers instead of writing again.
 */
export class RunHost {
  readonly journal: RunJournal;
  readonly done: Promise<void>;
  private readonly refs = new Map<ActorPath, ActorRef<ActorMessage>>();
  private readonly supervisor: ActorRef<ActorMessage>;
  private resolveDone!: () => void;
  private ended = false;
  private readonly replies: Replies;
  /** This run's node tasks, when they run across the cluster. */
  private tasks: HostTasks | undefined;
  private readonly recording: Recording | undefined;
  private readonly held: Envelope[] = [];

  /** The ledger as of the last accepted envelope (see the constructor). */
  private ledger: Ledger;

  constructor(
    private readonly deps: HostDeps,
    readonly run: RunRecord,
    def: GraphDef<unknown>,
    trace: TraceContext,
    o: RunHostOptions,
  ) {
    const { wallClockSec: _clock, ...limits } = run.budget as Budget;
    // The ledger as of the last committed event, kept by folding each commit's budget envelopes:
    // every checkpoint carries it, so a restore needs no fold over the run's history.
    this.ledger = o.ledger ?? newLedger(limits, nodeLimitsOf(def));
    this.recording = o.recording;
    this.journal = this.openJournal(o);
    this.done = new Promise<void>((r) => (this.resolveDone = r));
    this.replies = new Replies(deps.clock);
    this.supervisor = deps.system.spawn(SUPERVISOR_PATH, fromRunSupervisor(this.services(def, trace, o), o.restored));
    this.refs.set(SUPERVISOR_PATH, this.supervisor);
  }

  /** The run's journal: fenced by this node, delivering to this host's actors first, folding the ledger. */
  private openJournal(o: RunHostOptions): RunJournal {
    const { deps, run } = this;
    const recording = o.recording;
    return new RunJournal(deps.store, deps.bus, run.id, run.lastSeq, o.known ?? [], {
      ...(o.restored ? { step: o.restored.step } : {}),
      // A replay's agents add what its original's did: the store may name their records instead of storing them again.
      ...(run.replay ? { original: run.replay.of } : {}),
      ...(deps.stageFlushMs !== undefined ? { flushMs: deps.stageFlushMs } : {}),
      ...(deps.maxPayloadBytes !== undefined ? { maxPayloadBytes: deps.maxPayloadBytes } : {}),
      // A commit whose outcome is unknown ends this hosting: the run is resumed from the log.
      onFailed: (e) => deps.onLost?.(this, e),
      // Every commit is fenced by this node's hold on the run.
      ...(deps.nodeId !== undefined ? { owner: deps.nodeId } : {}),
      // Folded as envelopes are accepted (staged ones too): the host's view of the ledger is the actors' view.
      onWrite: (fresh) => void (this.ledger = foldLedger(this.ledger, budgetOf(fresh))),
      // Local first: the host's actors get the run's envelopes in process; the bus carries them to the others.
      deliver: (env) => this.route(env),
      isLocal: (path) => {
        const ref = this.refs.get(path);
        return ref !== undefined && !ref.remote;
      },
      ...(recording && run.replay
        ? {
            replay: {
              recording,
              info: run.replay,
              deliver: (env) => this.route(env),
              onDiverged: (divergence) => {
                this.releaseHeld();
                if (recording.mode === 'recorded') this.supervisor.tell({ local: 'diverged', divergence });
              },
            },
          }
        : {}),
    });
  }

  /**
   * This run's node tasks, made when the run first hands a task out (its first swarm): a run
   * without one serves nothing on the bus. Undefined when tasks run here (no cluster, or a
   * replay: its actors read the original's recording, which only the host holds).
   */
  private hostTasks(): (() => HostTasks) | undefined {
    const { deps, run } = this;
    const { queue, rpc } = deps.bus;
    const tasks = deps.tasks;
    if (!(tasks && queue && rpc && !run.replay)) return undefined;
    return () => {
      // An actor still unwinding after the run stopped hands nothing out.
      if (this.ended) throw new AoError('AO_NODE_CANCELLED', `run ${run.id} is no longer hosted here`);
      return (this.tasks ??= new HostTasks({
        runId: run.id,
        epoch: randomUUID(),
        host: deps.nodeId ?? 'local',
        hostStarted: tasks.hostStarted,
        rpc,
        queue,
        journal: this.journal,
        onDispatchFailed: (e) => deps.onLost?.(this, e),
        silentMs: tasks.silentMs,
      }));
    };
  }

  /** What the run's actors get from this host (RunServices). */
  private services(def: GraphDef<unknown>, trace: TraceContext, o: RunHostOptions): RunServices {
    const { deps, run } = this;
    const hostTasks = this.hostTasks();
    const services: RunServices = {
      runId: run.id,
      tenant: run.tenant,
      def,
      input: run.input,
      budget: run.budget as Budget,
      prices: deps.prices,
      ...(o.ledger ? { ledger: o.ledger } : {}),
      ...(run.replay ? { replay: run.replay } : {}),
      ledgerAt: (fresh) => foldLedger(this.ledger, budgetOf(fresh)),
      awaitReply: (requestId, timeoutMs, signal, onInterim) => this.replies.await(requestId, timeoutMs, signal, onInterim),
      // In a cluster the actors' last words name this node (`ranOn`), as a node task's name its node.
      journal: deps.bus.queue && deps.nodeId !== undefined && !run.replay ? ranOnJournal(this.journal, deps.nodeId) : this.journal,
      startedAt: Date.parse(run.startedAt ?? run.createdAt),
      spanAttributes: {
        'ao.run.id': run.id,
        'ao.graph': def.name,
        'ao.graph.version': def.version,
        ...(run.replay ? { replay: true, 'ao.replay.of': run.replay.of, 'ao.replay.mode': run.replay.mode } : {}),
      },
      llm: deps.llm,
      tools: deps.tools,
      secrets: deps.secrets.forRun(run),
      clock: deps.clock,
      trace,
      ...(hostTasks ? { remote: (path: ActorPath) => hostTasks().ref(path) } : {}),
      register: (ref) => void this.refs.set(ref.path, ref),
      unregister: (path) => void this.refs.delete(path),
      finished: () => this.finish(o, false),
      passivated: () => this.finish(o, true),
      pendingSignals: () => deps.store.pendingSignals(run.id),
      ...restoredAgents(o.agents),
      fork: (step, budget, key) => {
        if (!deps.fork) throw new AoError('AO_INTERNAL', 'this node cannot fork runs');
        return deps.fork(run.id, step, budget, key);
      },
      crashed: (err) => this.crashed(services, err, o),
    };
    return services;
  }

  /** The run ended (or, `passivated`, went to sleep waiting for a person): stop hosting it. */
  private finish(o: RunHostOptions, passivated: boolean): void {
    // Let the final commit's envelopes reach subscribers before the run's routes go.
    void this.journal.flush().then(() => {
      this.stop();
      o.onEnd(this);
      if (passivated) o.onPassivated?.(this);
    });
  }

  /** The run supervisor crashed: end the run failed. */
  private crashed(services: RunServices, err: unknown, o: RunHostOptions): void {
    const { run, deps } = this;
    const trace = services.trace;
    const error = { code: 'AO_INTERNAL', message: `the run supervisor crashed: ${err instanceof Error ? err.message : String(err)}` };
    log.error('the run supervisor crashed', { component: 'host', runId: run.id, err });
    const usage = services.ledgerAt([]).usage;
    runEnded(services, 'failed', error, [], usage);
    // If even this write fails (the store is down), the lease lapses and recovery resumes the
    // run from its last checkpoint.
    void this.journal
      .append(
        [
          draft(
            { runId: run.id, trace },
            {
              from: SUPERVISOR_PATH,
              to: SUPERVISOR_PATH,
              type: 'run.finished',
              payload: { status: 'failed', error, usage },
              causationId: null,
              key: 'run.finished',
            },
          ),
        ],
        { patch: { status: 'failed', error, usage, finishedAt: isoNow(deps.clock), releaseLease: true } },
      )
      .catch(() => undefined)
      .finally(() => {
        this.stop();
        o.onEnd(this);
      });
  }

  /**
   * Route a published envelope: a budget answer to the call that waits for it, anything else to
   * the actor it is addressed to. A recorded replay delivers what an actor's decisions depend on
   * in the original's order (held until what came before it in the original has been delivered).
   */
  private route(env: Envelope): void {
    if (this.replies.deliver(env)) return;
    const rec = this.recording;
    if (rec?.ordering) {
      if (!rec.mayDeliver(env)) {
        this.held.push(env);
        return;
      }
      this.tell(env);
      rec.delivered(env);
      // What waited for this one may go now, in turn.
      for (let i = 0; i < this.held.length;) {
        const h = this.held[i]!;
        if (!rec.mayDeliver(h)) {
          i += 1;
          continue;
        }
        this.held.splice(i, 1);
        this.tell(h);
        rec.delivered(h);
        i = 0;
      }
      return;
    }
    this.tell(env);
  }

  private tell(env: Envelope): void {
    const ref = this.refs.get(env.to);
    if (ref && !ref.stopped) ref.tell(env);
  }

  /** Ordering stops (the replay diverged): deliver whatever waits, in arrival order. */
  private releaseHeld(): void {
    for (const h of this.held.splice(0)) this.tell(h);
  }

  /** A new run, or one that crashed before its first step: (re-)send `run.started`. */
  async begin(def: GraphDef<unknown>, budget: Budget, trace: TraceContext): Promise<void> {
    const started = draft(
      { runId: this.run.id, trace },
      {
        from: actorPath('gateway'),
        to: SUPERVISOR_PATH,
        type: 'run.started',
        payload: { graph: def.name, version: def.version, input: this.run.input, budget },
        causationId: null,
        key: 'run.started',
      },
    );
    await this.journal.append([started], { patch: { status: 'running', startedAt: this.run.startedAt ?? isoNow(this.deps.clock) } });
  }

  /** Restored from a checkpoint: hand the supervisor the start messages of its live children. */
  resume(starts: Envelope[]): void {
    this.supervisor.tell({ local: 'resume', starts });
  }

  /** Answers came for this run's waits: hand them to its supervisor. */
  async signals(): Promise<void> {
    const signals = await this.deps.store.pendingSignals(this.run.id);
    if (signals.length && !this.ended) this.supervisor.tell({ local: 'signals', signals });
  }

  cancel(reason: string): void {
    this.supervisor.tell({ local: 'cancel', reason });
  }

  /** Stop hosting (the run ended, the node shuts down, or it lost the lease). */
  stop(): void {
    if (this.ended) return;
    this.ended = true;
    this.journal.close();
    this.tasks?.close();
    this.supervisor.stop();
    this.refs.clear();
    this.resolveDone();
  }

  /** This host has stopped (the run ended, went to sleep, or the node let it go). */
  get stopped(): boolean {
    return this.ended;
  }

  /** Live actors of this run (the supervisor and its descendants that have not stopped, here or as tasks elsewhere). */
  liveActors(): number {
    return [...this.refs.values()].filter((r) => !r.stopped).length;
  }

  /** Node tasks of this run handed out to the cluster and not finished or stopped. */
  liveTasks(): number {
    return this.tasks?.live ?? 0;
  }
}
