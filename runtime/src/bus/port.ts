import type { Envelope } from '../envelope/mod.js';

export type EnvelopeHandler = (env: Envelope) => void | Promise<void>;

export interface Subscription {
  unsubscribe(): void;
  /** Resolves once deliveries have begun (a network bus creates its consumer first); absent = at once. */
  readonly ready?: Promise<void>;
}

/**
 * A work item's handler: resolve to acknowledge it, throw to have it redelivered (with backoff,
 * then dead-lettered). `deliveries` counts from 1: a later delivery of the same item has a higher one.
 */
export type WorkHandler = (payload: unknown, info: { deliveries: number }) => Promise<void>;

/** Work shared by the nodes of a cluster: each item is handed to one node at a time, at least once. */
export interface WorkQueue {
  /** Enqueue once per `id` (a repeat within the dedupe window is dropped). */
  enqueue(queue: 'runs' | 'tasks', id: string, payload: unknown): Promise<void>;
  /**
   * Hand the queue's items to `handler`; `concurrency` items at a time (default 1). An item is
   * pulled only when a slot is free, so none waits unacknowledged behind busy ones.
   */
  consume(queue: 'runs' | 'tasks', handler: WorkHandler, o?: { concurrency?: number }): Subscription;
}

/**
 * Request and reply between the nodes of a cluster (NATS core request/reply): a run's host answers
 * the node tasks it handed out on other nodes (their writes go through the host's journal).
 */
export interface Rpc {
  /** Answer calls to `name` until unsubscribed; the handler's value (JSON) is the reply. */
  serve(name: string, handler: (payload: unknown) => Promise<unknown>): Subscription;
  /**
   * Call `name` and resolve with its reply. Rejects with AO_BUS_NO_RESPONDER when nobody serves
   * `name`, and AO_BUS_UNAVAILABLE on a timeout or while the bus is unreachable.
   */
  call(name: string, payload: unknown, timeoutMs: number): Promise<unknown>;
}

/** What a runtime node says about itself in the cluster's membership (GET /nodes). */
export interface NodeInfo {
  id: string;
  /** The host and pid of the process holding the id (absent from nodes of older versions). */
  host?: string;
  pid?: number;
  started: string;
  /** Runs this node has hosted since it started, and hosts now. */
  runsHosted: number;
  activeRuns: number;
  /** Node executions and swarm branches (task-queue items) this node has run to their end. */
  tasksDone: number;
  /** Task-queue items running on this node now. */
  activeTasks?: number;
  /** Ids of the runs it hosts now (the first {@link NODE_RUNS_LISTED}). */
  runs?: string[];
  /** How busy the process was since its previous heartbeat. */
  load?: NodeLoad;
  lastHeartbeat: string;
}

/** Runs a node lists in its membership entry at most (`activeRuns` counts them all). */
export const NODE_RUNS_LISTED = 100;

/** A node process's load over its last heartbeat interval. */
export interface NodeLoad {
  /** CPU time used / wall time (1 = one CPU busy). */
  cpu: number;
  /** Event-loop delay, p99, in ms (how late a timer fired): high when the process cannot keep up. */
  eventLoopDelayMs: number;
  /** Resident memory, bytes. */
  rssBytes: number;
}

/** Node membership and liveness: entries expire when their node stops beating. */
export interface Membership {
  beat(info: NodeInfo): Promise<void>;
  list(): Promise<NodeInfo[]>;
  leave(id: string): Promise<void>;
}

/**
 * A run-level envelope (`run.*`: started, finished, parked, waiting, resumed, ...) as a short
 * signal: which run, what happened, at which seq. The envelope itself stays in the log.
 */
export interface RunSignal {
  runId: string;
  type: string;
  seq: number;
}

/** Whether an envelope of this type is also pushed as a {@link RunSignal}. */
export const isRunSignal = (type: string): boolean => type.startsWith('run.');

/**
 * The bus carries envelopes between actors (and to observers) after the journal has committed
 * them. Delivery is at-least-once and in publish order per subscriber; the envelope id makes a
 * redelivery detectable. Adapters: in-process, and NATS JetStream (`nats/`).
 */
export interface Bus {
  readonly kind: string;
  /**
   * Publish a committed envelope. `again`: a re-delivery of one published before (recovery re-sends
   * what a crash interrupted), which a bus that drops duplicates by id must still deliver.
   */
  publish(env: Envelope, o?: { again?: boolean }): Promise<void>;
  /**
   * Publish the envelopes of one commit, in order, as `publish` would one by one. A network bus
   * sends them together (one message per commit, split only past its payload limit), which is
   * what makes a host's own commits cheap to carry to the others. Absent: one `publish` each.
   * `again`: a re-delivery (see `publish`). The envelopes are valid (the journal checked them
   * before it stored them, or read them back from the log): they are not parsed again.
   */
  publishCommit?(envs: readonly Envelope[], o?: { again?: boolean }): Promise<void>;
  /** Every envelope of one run (`runId`), or of all runs (`'*'`). */
  subscribe(runId: string, handler: EnvelopeHandler): Subscription;
  /**
   * Signals of every run's run-level envelopes, pushed after their commit (see {@link RunSignal}):
   * how a process that does not host a run learns that it ended or changed status, without a
   * consumer per run or a read of its row per poll. At most once: signals sent while this
   * process was cut off from the bus are lost, so `onGap` is called when it is back (a watcher
   * that must not miss an end re-reads the row then). Absent: use `subscribe`.
   */
  watchRuns?(handler: (s: RunSignal) => void, o?: { onGap?: () => void }): Subscription;
  close(): Promise<void>;
  /** Cluster work distribution (NATS); absent on the in-process bus, where one node does everything. */
  readonly queue?: WorkQueue;
  /** Cluster membership (NATS KV); absent on the in-process bus. */
  readonly membership?: Membership;
  /** False while the bus cannot be reached (NATS down, or this node cut off from it); absent: always reachable. */
  readonly reachable?: boolean;
  /** Request/reply between nodes (NATS); absent on the in-process bus. */
  readonly rpc?: Rpc;
}
