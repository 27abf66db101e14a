import { z } from 'zod';
import { AoError, isAoError } from '@ao/graphs';
import { ActorPathSchema, EnvelopeSchema, forwardedDraft } from '@ao/runtime';
import { log, systemClock } from '@ao/runtime';
import type { ActorJournal, ActorPath, ActorRef, Envelope, EnvelopeType, Rpc, Subscription, WorkQueue } from '@ao/runtime';
import { BUDGET_PATH } from '../effects/effects.js';
import { parentOf } from '../pipeline/pipeline.js';
import { SUPERVISOR_PATH } from '../run-supervisor/run-supervisor.js';
import type { ActorMessage } from '../services.js';
import { isEnvelope } from '../services.js';

/**
 * A node task on the cluster's task queue: one execution of a pipeline or supervisor node, or one
 * swarm branch, of a run hosted on `host`. Any node may run it; its writes go through the host's
 * journal (the run's one writer) over `rpc` subject `task`, answered only by that hosting (`epoch`).
 */
export const TaskItemSchema = z.object({
  runId: z.string().min(1).max(128),
  /** The actor's path in the run (`supervisor/analyse/branch-2`). */
  path: ActorPathSchema,
  /** The id of its start message (`node.start` or `branch.start`), already in the run's log. */
  startId: z.uuid(),
  host: z.string().min(1).max(128),
  /** When the host node started (a node restarted under the same id is another incarnation). */
  hostStarted: z.string().min(1).max(64),
  /** The hosting of the run that handed the task out: a new host (after a failover) hands it out again under its own. */
  epoch: z.string().min(1).max(64),
  /** How many times this hosting handed the task out (again after a silence): later ones win claims. */
  generation: z.number().int().min(0).max(1_000_000),
});
export type TaskItem = z.infer<typeof TaskItemSchema>;

/** A task's envelope on the way to its host, before the journal gives it an id, a seq and a time (validated there: the bus is a boundary). */
const DraftSchema = EnvelopeSchema.omit({ id: true, seq: true, time: true }).extend({ dedupeKey: z.string().min(1).max(1024) });

/** A task's request to its host: take the task (fencing any earlier holder), say it is alive, or write envelopes. */
export const TaskRequestSchema = z.discriminatedUnion('op', [
  z.object({
    op: z.literal('claim'),
    path: ActorPathSchema,
    holder: z.string().min(1).max(64),
    /** Its item's generation and delivery count: a claim older than the current holder's is refused. */
    generation: z.number().int().min(0).max(1_000_000),
    deliveries: z.number().int().min(1).max(1_000_000),
  }),
  z.object({ op: z.literal('beat'), path: ActorPathSchema, holder: z.string().min(1).max(64) }),
  z.object({ op: z.literal('append'), path: ActorPathSchema, holder: z.string().min(1).max(64), drafts: z.array(DraftSchema).min(1).max(64) }),
]);
export type TaskRequest = z.infer<typeof TaskRequestSchema>;

/** The rpc name a run's hosting answers its tasks on (run ids are made subject-safe). */
export const taskSubject = (runId: string, epoch: string): string => `task.${runId.replace(/[^A-Za-z0-9_-]/g, '_')}.${epoch}`;

/** What a task's actor (or a child agent under it) may write, and to whom. */
const EMITS: Record<string, (to: string) => boolean> = {
  'budget.request': (to) => to === BUDGET_PATH,
  'budget.settle': (to) => to === BUDGET_PATH,
  'budget.release': (to) => to === BUDGET_PATH,
  'llm.request': (to) => to.startsWith('llm/'),
  'tool.call': (to) => to.startsWith('tool/'),
  'wait.registered': (to) => to === SUPERVISOR_PATH,
  'task.started': () => true,
  'task.completed': () => true,
  'task.failed': () => true,
};
/** What the endpoints a task called answer it (written by the task, from the endpoint). */
const RESULTS: ReadonlySet<string> = new Set<EnvelopeType>([
  'llm.throttled',
  'llm.response',
  'llm.failed',
  'tool.result',
  'effect.reconciled',
  'effect.unknown_outcome',
]);
/** A task's last word, to its parent: by the kind of its start message. */
const DONE: Record<string, ReadonlySet<string>> = {
  'node.start': new Set<EnvelopeType>(['node.completed', 'node.failed']),
  'branch.start': new Set<EnvelopeType>(['branch.completed', 'branch.failed']),
};
/** Messages that start a node task (what a remote actor is handed). */
const STARTS: ReadonlySet<string> = new Set(Object.keys(DONE));

interface Dispatched {
  ref: RemoteRef;
  /** The delivery of the task that may write now (the latest to claim it). */
  holder?: string;
  /** The holder's item generation and delivery count. */
  order?: [number, number];
  /** Last heard of (handed out, claimed, a write or a beat): epoch ms. */
  seen: number;
  /** Handed out again after a silence (each time under a new queue id). */
  generation: number;
  /** Its start message, once handed out. */
  start?: Envelope;
  done: boolean;
}

/**
 * An actor of this run that runs as a node task somewhere in the cluster. Telling it its start
 * message puts the task on the queue; stopping it fences the task (its next write is refused, and
 * it stops there).
 */
class RemoteRef implements ActorRef<ActorMessage> {
  stopped = false;
  readonly remote = true;
  constructor(
    readonly path: ActorPath,
    private readonly tasks: HostTasks,
  ) {}

  tell(msg: ActorMessage): void {
    // Answers addressed to it reach the task through its own subscription to the run.
    if (this.stopped || !isEnvelope(msg) || !STARTS.has(msg.type)) return;
    this.tasks.dispatch(this, msg);
  }

  stop(): void {
    this.stopped = true;
  }
}

/**
 * The host's side of its run's node tasks: hands them out on the task queue and writes what they
 * send, in order, through the run's journal. Only a task's current holder may write, only
 * envelopes from its own actor (or the actors under it), and nothing once it was stopped.
 */
export class HostTasks {
  private readonly tasks = new Map<ActorPath, Dispatched>();
  private readonly sub: Subscription;
  readonly ready: Promise<void>;
  private closed = false;

  constructor(
    private readonly o: {
      runId: string;
      epoch: string;
      host: string;
      hostStarted: string;
      rpc: Rpc;
      queue: WorkQueue;
      journal: ActorJournal;
      /** A task could not be handed out (the bus stayed away): the host gives the run up, so it is resumed and handed out again. */
      onDispatchFailed: (e: unknown) => void;
      /**
       * A task claimed and then silent this long (no write, no beat; a running task beats every
       * few seconds) is handed out again: its node is gone, or its item was dropped.
       */
      silentMs?: number;
      /**
       * A task nobody claimed this long is handed out again (its item may have been parked after
       * failed deliveries); a copy that comes late finds the task claimed or done and stops.
       */
      unclaimedMs?: number;
      now?: () => number;
    },
  ) {
    try {
      this.sub = o.rpc.serve(taskSubject(o.runId, o.epoch), (p) => this.handle(p));
      this.ready = this.sub.ready ?? Promise.resolve();
    } catch (e) {
      // The bus is gone (this node is cut off): no task can be handed out, so the run is given up
      // (see `dispatch`) rather than failed, and another node resumes it.
      this.sub = { unsubscribe: () => undefined };
      this.ready = Promise.reject(e);
      this.ready.catch(() => undefined);
    }
    const silentMs = o.silentMs ?? 30_000;
    const unclaimedMs = o.unclaimedMs ?? Math.max(60_000, 4 * silentMs);
    this.watch = setInterval(() => this.redispatchSilent(silentMs, unclaimedMs), Math.max(250, Math.floor(Math.min(silentMs, unclaimedMs) / 4)));
    this.watch.unref();
  }

  private readonly watch: NodeJS.Timeout;
  private now(): number {
    return this.o.now?.() ?? systemClock.now();
  }

  /**
   * Hand out again the tasks that were claimed and then fell silent, or that nobody claimed for
   * long (a fresh claim fences the silent delivery; a stale copy finds the task taken or done).
   */
  private redispatchSilent(silentMs: number, unclaimedMs: number): void {
    if (this.closed) return;
    for (const t of this.tasks.values()) {
      if (t.ref.stopped || t.done || !t.start) continue;
      const limit = t.holder === undefined ? unclaimedMs : silentMs;
      if (this.now() - t.seen < limit) continue;
      t.generation += 1;
      t.seen = this.now();
      log.warn(`task ${t.ref.path} ${t.holder === undefined ? 'unclaimed' : 'silent'} for ${limit} ms; handing it out again (generation ${t.generation})`, {
        component: 'tasks',
        runId: this.o.runId,
      });
      this.enqueue(t, t.start);
    }
  }

  /** A ref for an actor at `path` that will run as a node task. */
  ref(path: ActorPath): ActorRef<ActorMessage> {
    const prior = this.tasks.get(path);
    if (prior && !prior.ref.stopped) return prior.ref;
    const ref = new RemoteRef(path, this);
    this.tasks.set(path, { ref, done: false, seen: this.now(), generation: 0 });
    return ref;
  }

  dispatch(ref: RemoteRef, start: Envelope): void {
    const t = this.tasks.get(ref.path);
    if (this.closed || !t || t.ref !== ref) return;
    t.start = start;
    t.seen = this.now();
    this.enqueue(t, start);
  }

  private enqueue(t: Dispatched, start: Envelope): void {
    const item: TaskItem = {
      runId: this.o.runId,
      path: t.ref.path,
      startId: start.id,
      host: this.o.host,
      hostStarted: this.o.hostStarted,
      epoch: this.o.epoch,
      generation: t.generation,
    };
    // Enqueued once per hosting and generation (JetStream drops a repeat of the same id).
    const id = `${this.o.runId}/${t.ref.path}/${this.o.epoch}${t.generation ? `/${t.generation}` : ''}`;
    // Handed out once this hosting answers its tasks (a task's first request is its claim).
    this.ready
      .then(() => this.o.queue.enqueue('tasks', id, item))
      .catch((e: unknown) => {
        if (!this.closed) this.o.onDispatchFailed(e);
      });
  }

  /** Whether a task may write these envelopes: its own emissions only (the bus is a boundary). */
  private check(t: Dispatched, path: string, drafts: ReadonlyArray<z.infer<typeof DraftSchema>>): void {
    const under = (p: string) => p === path || p.startsWith(`${path}/`);
    const parent = parentOf(path as ActorPath);
    for (const d of drafts) {
      const ok =
        d.runId === this.o.runId &&
        d.dedupeKey.startsWith(`${path}/`) &&
        (d.dedupeKey === `${path}/done`
          ? d.from === path && d.to === parent && (DONE[t.start?.type ?? ''] ?? new Set()).has(d.type)
          : RESULTS.has(d.type)
            ? /^(llm|tool)\//.test(d.from) && under(d.to)
            : under(d.from) && (EMITS[d.type]?.(d.to) ?? false));
      if (!ok)
        throw new AoError(
          'AO_VALIDATION',
          `task ${path} may only write its own envelopes of run ${this.o.runId} (got ${d.type} ${d.dedupeKey} from ${d.from} to ${d.to})`,
        );
    }
  }

  private async handle(raw: unknown): Promise<unknown> {
    const r = TaskRequestSchema.safeParse(raw);
    if (!r.success) throw new AoError('AO_VALIDATION', `a task request: ${r.error.issues[0]?.path.join('.')}: ${r.error.issues[0]?.message}`);
    const req = r.data;
    const t = this.tasks.get(req.path);
    if (this.closed || this.o.journal.ended) throw new AoError('AO_TASK_STOPPED', `run ${this.o.runId} is no longer hosted here`);
    if (!t || t.ref.stopped || (req.op === 'claim' && t.done))
      throw new AoError('AO_TASK_STOPPED', `task ${req.path} of run ${this.o.runId} was stopped or is done`);
    if (req.op === 'claim') {
      // A later delivery (the node that ran it died or stalled) takes the task over and the
      // earlier holder is fenced; an earlier one that claims late (it stalled) is refused.
      const order: [number, number] = [req.generation, req.deliveries];
      if (t.holder !== req.holder && t.order && (order[0] < t.order[0] || (order[0] === t.order[0] && order[1] < t.order[1]))) {
        throw new AoError('AO_TASK_STOPPED', `task ${req.path} of run ${this.o.runId} was taken by a later delivery`);
      }
      t.holder = req.holder;
      t.order = order;
      t.seen = this.now();
      // What the earlier holder had written is committed before the new one reads the log.
      await this.o.journal.flush();
      return { claimed: true };
    }
    if (t.holder !== req.holder) throw new AoError('AO_TASK_STOPPED', `task ${req.path} of run ${this.o.runId} is held by another delivery`);
    t.seen = this.now();
    if (req.op === 'beat') return { alive: true };
    this.check(t, req.path, req.drafts);
    try {
      await this.o.journal.append(req.drafts.map(forwardedDraft));
    } catch (e) {
      if (this.o.journal.ended) throw new AoError('AO_TASK_STOPPED', `run ${this.o.runId} is no longer hosted here`);
      throw isAoError(e) ? e : new AoError('AO_INTERNAL', (e as Error).message);
    }
    if (req.drafts.some((d) => d.dedupeKey === `${req.path}/done`)) t.done = true;
    return { written: req.drafts.length };
  }

  /** Tasks handed out and not stopped (for tests and the node's view). */
  get live(): number {
    return [...this.tasks.values()].filter((t) => !t.ref.stopped && !t.done).length;
  }

  /** The hosting ends: every task is fenced, and nobody answers them here any more. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.watch);
    for (const t of this.tasks.values()) t.ref.stop();
    this.sub.unsubscribe();
  }
}
