import { randomUUID } from 'node:crypto';
import { AoError, isAoError } from '@ao/graphs';
import type { Budget, GraphRegistry } from '@ao/graphs';
import { envelopeIdFor, runTraceContext, TERMINAL_STATUSES } from '@ao/runtime';
import { log, systemClock } from '@ao/runtime';
import type {
  ActorJournal,
  ActorRef,
  ActorSystem,
  Bus,
  Clock,
  Divergence,
  Envelope,
  AnyDraft,
  EnvelopeType,
  Recording,
  RunRecord,
  SecretVault,
  Store,
  Subscription,
  ToolRegistry,
} from '@ao/runtime';
import type { PriceTable } from '../budget/ledger.js';
import { taskBehaviour } from '../run-supervisor/run-supervisor.js';
import type { ActorMessage, LlmResolver, RunServices } from '../services.js';
import { TaskItemSchema, taskSubject } from './host-tasks.js';
import type { TaskItem, TaskRequest } from './host-tasks.js';
import { Replies } from './replies.js';
import { withRanOn } from './ran-on.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Envelopes after which nothing of the run goes on until it is hosted again: its tasks stop. */
const RUN_PAUSES: ReadonlySet<string> = new Set<EnvelopeType>(['run.finished', 'run.parked', 'run.waiting']);

export interface TaskRunnerDeps {
  nodeId: string;
  store: Store;
  bus: Bus;
  system: ActorSystem;
  graphs: GraphRegistry;
  llm: LlmResolver;
  tools: ToolRegistry;
  secrets: SecretVault;
  clock: Clock;
  prices: PriceTable;
  /** The cluster's lease: a host silent for longer than twice this is taken for gone. */
  leaseMs: number;
}

/**
 * The journal of a node task: what it writes goes to the run's host (its one writer) and is
 * committed there, in order; what the task reads back (`recorded`) is the run's log as loaded when
 * the task started. A task whose host fenced it (it was stopped, or handed to another delivery),
 * or whose host is gone, writes nothing more.
 */
class TaskJournal implements ActorJournal {
  readonly replay: Recording | undefined = undefined;
  private readonly known = new Map<string, Envelope>();
  private tail: Promise<unknown> = Promise.resolve();
  private stoppedWhy: string | undefined;

  constructor(
    readonly runId: string,
    known: readonly Envelope[],
    private readonly send: (req: TaskRequest) => Promise<unknown>,
    private readonly path: string,
    private readonly holder: string,
    /** Told when the task's own last word (`<path>/done`) is written. */
    private readonly onDone: () => void,
    /** This runtime node: its last word names it (`ranOn`), so a run's log says where each task ran. */
    private readonly nodeId: string,
  ) {
    for (const e of known) this.known.set(e.id, e);
  }

  get ended(): boolean {
    return this.stoppedWhy !== undefined;
  }

  get why(): string | undefined {
    return this.stoppedWhy;
  }

  end(why: string): void {
    this.stoppedWhy ??= why;
  }

  idOf(dedupeKey: string): string {
    return envelopeIdFor(this.runId, dedupeKey);
  }

  recorded(dedupeKey: string): Envelope | undefined {
    return this.known.get(this.idOf(dedupeKey));
  }

  recording(): Envelope | undefined {
    return undefined;
  }

  remember(envs: readonly Envelope[]): void {
    for (const e of envs) this.known.set(e.id, e);
  }

  async diverged(_d: Divergence): Promise<void> {
    // Replays keep their actors on their host: a node task is never part of one.
  }

  append(drafts: AnyDraft[], extra: { patch?: unknown; checkpoint?: unknown; divergence?: unknown } = {}): Promise<Envelope[]> {
    const go = async (): Promise<Envelope[]> => {
      if (extra.patch || extra.checkpoint || extra.divergence) throw new AoError('AO_INTERNAL', "a node task writes envelopes only (run state is its host's)");
      if (this.stoppedWhy) throw new AoError('AO_TASK_STOPPED', `task ${this.path} of run ${this.runId} stopped: ${this.stoppedWhy}`);
      for (let i = 0; i < drafts.length; i += 64) {
        const chunk = drafts.slice(i, i + 64).map(({ time: _t, ...d }) => withRanOn(d, this.nodeId));
        await this.send({
          op: 'append',
          path: this.path as TaskRequest['path'],
          holder: this.holder,
          drafts: chunk as Extract<TaskRequest, { op: 'append' }>['drafts'],
        });
      }
      if (drafts.some((d) => d.dedupeKey === `${this.path}/done`)) this.onDone();
      return [];
    };
    const p = this.tail.then(go, go);
    this.tail = p.catch(() => undefined);
    return p;
  }

  async flush(): Promise<void> {
    await this.tail;
  }
}

/**
 * Runs node tasks (node executions and swarm branches of runs hosted anywhere in the cluster) on
 * this node: each is its actor, spawned here from its start message, reading its recorded effects
 * from the run's log and writing through the run's host. It ends when the actor has written its
 * result, when the run pauses or ends, or when the host fences it; a node shutting down hands its
 * tasks back to the queue.
 */
export class TaskRunner {
  private readonly running = new Set<{ stop: () => void; left: Promise<void> }>();
  private closed = false;
  /** Tasks run to their end here. */
  done = 0;

  constructor(private readonly d: TaskRunnerDeps) {}

  get active(): number {
    return this.running.size;
  }

  /** A task-queue item: resolves when it is over (acknowledged); throws to have it delivered again. */
  async run(raw: unknown, delivery: { deliveries: number } = { deliveries: 1 }): Promise<void> {
    const p = TaskItemSchema.safeParse(raw);
    if (!p.success) throw new AoError('AO_VALIDATION', `a task-queue item: ${p.error.issues[0]?.path.join('.')}: ${p.error.issues[0]?.message}`);
    if (this.closed) throw new AoError('AO_INTERNAL', `node ${this.d.nodeId} is shutting down`);
    const item = p.data;
    const run = await this.d.store.getRun(item.runId);
    // Over, or asleep: its host hands the task out again when it wakes.
    if (!run || TERMINAL_STATUSES.has(run.status) || run.status === 'waiting') return;
    if (this.closed) throw new AoError('AO_INTERNAL', `node ${this.d.nodeId} is shutting down`);
    const def = this.d.graphs.get(run.graph);
    if (!def || def.version !== run.graphVersion) {
      // Another node may have it (a rolling upgrade): delivered again, then parked for an operator.
      throw new AoError('AO_GRAPH_NOT_FOUND', `node ${this.d.nodeId} has no version ${run.graphVersion} of graph "${run.graph}"`);
    }
    let stop: () => void = () => undefined;
    let left!: () => void;
    const handle = { stop: () => stop(), left: new Promise<void>((r) => (left = r)) };
    this.running.add(handle);
    let finished: boolean;
    try {
      finished = await this.execute(item, delivery.deliveries, run, def, (s) => (stop = s));
      if (finished) this.done += 1;
    } finally {
      this.running.delete(handle);
      left();
    }
    // Stopped by this node's shutdown, not by its host: another node takes it.
    if (!finished && this.closed) throw new AoError('AO_INTERNAL', `node ${this.d.nodeId} shut down during task ${item.path}`);
  }

  private async execute(
    item: TaskItem,
    deliveries: number,
    run: RunRecord,
    def: NonNullable<ReturnType<GraphRegistry['get']>>,
    onStop: (stop: () => void) => void,
  ): Promise<boolean> {
    const { store, bus } = this.d;
    const holder = randomUUID();
    const replies = new Replies(this.d.clock, true);
    let ref: ActorRef<ActorMessage> | undefined;
    let settle!: (finished: boolean) => void;
    const over = new Promise<boolean>((r) => (settle = r));
    let journal: TaskJournal | undefined;
    let ended = false;
    const end = (why: string, finished = false) => {
      ended = true;
      journal?.end(why);
      ref?.stop();
      settle(finished);
    };
    onStop(() => end('this node shut down'));
    let stopBeat = () => undefined as void;
    // Answers to its requests come on the run's subject: subscribed before anything is asked.
    const sub: Subscription = bus.subscribe(run.id, (env) => {
      if (replies.deliver(env)) return;
      if (RUN_PAUSES.has(env.type)) end(`the run ${env.type === 'run.waiting' ? 'went to sleep' : 'ended'}`);
    });
    try {
      await sub.ready;
      // Stopped before its journal exists (e.g. while claiming): its requests stop too.
      const send = (req: TaskRequest) => this.send(item, req, () => ended || journal?.ended === true);
      try {
        await send({ op: 'claim', path: item.path, holder, generation: item.generation, deliveries });
      } catch (e) {
        if (isAoError(e) && e.code === 'AO_TASK_STOPPED') return false;
        throw e;
      }
      // Alive: the host hands a task that falls silent out again (and a stopped task learns it here).
      let beating = false;
      const beat = setInterval(
        () => {
          if (beating || journal?.ended) return;
          beating = true;
          send({ op: 'beat', path: item.path, holder })
            .catch((e: unknown) => void (isAoError(e) && e.code === 'AO_TASK_STOPPED' && end(e.message)))
            .finally(() => (beating = false));
        },
        Math.max(100, Math.min(2_000, Math.floor(this.d.leaseMs / 3))),
      );
      stopBeat = () => clearInterval(beat);
      const [start] = await store.getEvents(run.id, [item.startId]);
      // Its start message, and no other actor's (the item came over the bus).
      if (!start || start.id !== envelopeIdFor(run.id, `${item.path}/start`) || start.to !== item.path) {
        throw new AoError('AO_STORE_CORRUPT', `run ${run.id} has no start message ${item.startId} for task ${item.path}`);
      }
      const known = await store.listEvents(run.id, { after: start.seq - 1, limit: 1_000_000 });
      journal = new TaskJournal(run.id, known, send, item.path, holder, () => settle(true), this.d.nodeId);
      const services = this.services(run, def, journal, replies);
      const behaviour = taskBehaviour(start, services);
      if (!behaviour) throw new AoError('AO_ENVELOPE_INVALID', `task ${item.path}: ${start.type} does not start a node task`);
      ref = this.d.system.spawn(item.path, behaviour);
      ref.tell(start);
      // The actor reports its own end (`done`); a crash it could not report, or a stop, ends it too.
      const watch = setInterval(() => {
        if (ref?.stopped) void journal!.flush().then(() => end('the actor stopped'));
      }, 1_000);
      try {
        const finished = await over;
        await journal.flush();
        return finished;
      } finally {
        clearInterval(watch);
      }
    } finally {
      stopBeat();
      ref?.stop();
      sub.unsubscribe();
    }
  }

  /**
   * A request to the task's host, retried while the bus is away or the host is busy. A host that
   * fenced the task answers AO_TASK_STOPPED; a host that answers nothing any more (it died, or
   * stopped hosting the run) is taken for gone once the run's row says another node holds it, or
   * the run paused or ended, or its node is gone or restarted, or it stayed silent for two leases:
   * the task stops (the run's next host hands it out again). Any other error is the host's answer
   * (its write failed, as a local actor's would) and goes to the caller.
   */
  private async send(item: TaskItem, req: TaskRequest, stopped: () => boolean): Promise<unknown> {
    const subject = taskSubject(item.runId, item.epoch);
    let silentSince: number | undefined;
    for (let attempt = 0; ; attempt++) {
      if (stopped()) throw new AoError('AO_TASK_STOPPED', `task ${item.path} of run ${item.runId} was stopped`);
      try {
        return await this.d.bus.rpc!.call(subject, req, 10_000);
      } catch (e) {
        const code = isAoError(e) ? e.code : 'AO_INTERNAL';
        // The host's answer (stopped; or its write failed, as a local actor's would): the caller's.
        if (code !== 'AO_BUS_NO_RESPONDER' && code !== 'AO_BUS_UNAVAILABLE') throw e;
        if (code === 'AO_BUS_NO_RESPONDER') {
          silentSince ??= systemClock.now(); // wall time: the silence is slept really and held against leases
          if (await this.hostGone(item, systemClock.now() - silentSince))
            throw new AoError('AO_TASK_STOPPED', `the host of run ${item.runId} (node ${item.host}) is gone`);
        } else {
          silentSince = undefined;
          if (attempt % 10 === 9)
            log.warn(`task ${item.path}: ${(e as Error).message} (retrying)`, { component: 'tasks', nodeId: this.d.nodeId, runId: item.runId });
        }
        await sleep(Math.min(1_000, 25 * 2 ** Math.min(attempt, 6)));
      }
    }
  }

  private async hostGone(item: TaskItem, silentMs: number): Promise<boolean> {
    if (silentMs > 2 * this.d.leaseMs + 5_000) return true;
    // A moment's silence is a host re-subscribing after a reconnect.
    if (silentMs < 1_000) return false;
    const run = await this.d.store.getRun(item.runId).catch(() => undefined);
    if (!run || TERMINAL_STATUSES.has(run.status) || run.status === 'waiting' || run.owner !== item.host) return true;
    const members = await this.d.bus.membership?.list().catch(() => undefined);
    // Restarted under the same id (a missing entry may only be a NATS restart it has not beaten after yet).
    const node = members?.find((n) => n.id === item.host);
    return node !== undefined && node.started !== item.hostStarted;
  }

  /** What a task's actor shares with its run (the parts a run's host alone keeps are refused). */
  private services(run: RunRecord, def: RunServices['def'], journal: TaskJournal, replies: Replies): RunServices {
    const hostOnly = (what: string) => () => {
      throw new AoError('AO_INTERNAL', `${what} is the run's host's, not a node task's`);
    };
    return {
      runId: run.id,
      tenant: run.tenant,
      def,
      input: run.input,
      budget: run.budget as Budget,
      prices: this.d.prices,
      ledgerAt: hostOnly('the budget ledger'),
      awaitReply: (id, ms, signal, onInterim) => replies.await(id, ms, signal, onInterim),
      journal,
      llm: this.d.llm,
      tools: this.d.tools,
      secrets: this.d.secrets.forRun(run),
      clock: this.d.clock,
      trace: runTraceContext(run.id, run.traceId),
      startedAt: Date.parse(run.startedAt ?? run.createdAt),
      spanAttributes: { 'ao.run.id': run.id, 'ao.graph': def.name, 'ao.graph.version': def.version, 'ao.node.id': this.d.nodeId },
      register: () => undefined,
      unregister: () => undefined,
      finished: hostOnly('ending the run'),
      passivated: hostOnly('passivating the run'),
      fork: hostOnly('forking the run'),
      pendingSignals: hostOnly("reading the run's answers"),
      crashed: hostOnly('the run supervisor'),
    };
  }

  /** Stop every task running here (the node shuts down): each goes back to the queue. */
  async shutdown(ms = 5_000): Promise<void> {
    this.closed = true;
    const running = [...this.running];
    for (const t of running) t.stop();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(running.map((t) => t.left)), new Promise((r) => (timer = setTimeout(r, ms)))]).finally(() => clearTimeout(timer));
  }
}
