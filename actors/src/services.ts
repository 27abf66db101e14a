import type { Budget, GraphDef } from '@ao/graphs';
import type { Ledger, PriceTable } from './budget/ledger.js';
import type {
  ActorJournal,
  ActorPath,
  ActorRef,
  AgentRestore,
  Attributes,
  Clock,
  Divergence,
  Envelope,
  EnvelopeDraft,
  EnvelopeType,
  LlmPort,
  ReplayInfo,
  RunSecrets,
  SignalRecord,
  ToolRegistry,
  TraceContext,
  Typed,
} from '@ao/runtime';

/** Resolves a node's `llm` profile name to an adapter. */
export type LlmResolver = (profile: string) => LlmPort;

/** What the actors of one run share: set up by the engine, passed explicitly (no ambient context). */
export interface RunServices {
  readonly runId: string;
  /** Whose run it is: its LLM calls count against this tenant's share of a profile's limits. */
  readonly tenant: string;
  readonly def: GraphDef<unknown>;
  readonly input: unknown;
  /** The run's effective budget (the graph's, tightened by the run's overrides). */
  readonly budget: Budget;
  /** Price per million tokens by model, for `usd` budgets. */
  readonly prices: PriceTable;
  /** The budget actor's ledger when the run was restored (undefined for a new run). */
  readonly ledger?: Ledger;
  /** The ledger as of the last commit with these envelopes (about to be committed) applied: for checkpoints. */
  ledgerAt(fresh: readonly Envelope[]): Ledger;
  /** Set for a replay or fork: what it replays and overrides. */
  readonly replay?: ReplayInfo;
  /**
   * Resolves with the envelope that answers the request `requestId` (an envelope whose
   * causationId it is), or rejects after `timeoutMs` or when `signal` aborts. The asking actor is
   * busy in its own handler, so the answer comes this way, not through its mailbox.
   */
  awaitReply(requestId: string, timeoutMs: number, signal: AbortSignal, onInterim?: (env: Envelope) => void): Promise<Envelope>;
  readonly journal: ActorJournal;
  readonly llm: LlmResolver;
  readonly tools: ToolRegistry;
  /** Secret tool results of this run (and of the runs it replays), sealed under the node's key. */
  readonly secrets: RunSecrets;
  readonly clock: Clock;
  /** The run's trace context: its root span's ids (every span of the run descends from it). */
  readonly trace: TraceContext;
  /** When the run started (epoch ms): the start of its root span. */
  readonly startedAt: number;
  /** Attributes every span of the run carries (run id, graph, version, replay). */
  readonly spanAttributes: Attributes;
  /**
   * In a cluster: a ref for the child actor at `path` that runs as a node task on any node (its
   * start message puts it on the task queue). Absent when the run's actors all live on its host.
   */
  remote?(path: ActorPath): ActorRef<ActorMessage>;
  /** Make an actor reachable by its path for envelopes from the bus. */
  register(ref: ActorRef<ActorMessage>): void;
  unregister(path: ActorPath): void;
  /** Called once by the run supervisor when the run has ended or is parked. */
  finished(): void;
  /** Called once by the run supervisor when it passivated the run (it waits for a person; nothing of it stays in memory). */
  passivated(): void;
  /**
   * Fork this run from its checkpoint `step` with a new budget (a person's answer at a soft limit);
   * resolves with the fork's id, which derives from `key`: asked again (after a crash), the same fork.
   */
  fork(step: number, budget: Record<string, unknown>, key: string): Promise<string>;
  /** Answers to this run's waits not taken yet (oldest first). */
  pendingSignals(): Promise<SignalRecord[]>;
  /**
   * The resume point of the agent at `path` running the execution started by `start`, if the run
   * was restored with one (see @ao/runtime `turns.ts`); given once.
   */
  restoredAgent?(path: ActorPath, start: string): AgentRestore | undefined;
  /** The run supervisor itself crashed: end the run failed, or leave it to recovery if even that fails. */
  crashed(error: unknown): void;
}

/** What our actors receive: envelopes from the bus, or local ticks (timers, cancel), never journaled themselves. */
export type ActorMessage =
  | Envelope
  | { local: 'retry'; node: string; branch?: number }
  | { local: 'cancel'; reason: string }
  | { local: 'deadline' }
  /** Sent once to a supervisor restored from a checkpoint: the start messages of its live children. */
  | { local: 'resume'; starts: Envelope[] }
  /** A recorded replay diverged from its original: the run stops. */
  | { local: 'diverged'; divergence: Divergence }
  /** Answers (signals) came for this run's waits. */
  | { local: 'signals'; signals: SignalRecord[] }
  /** A wait's timeout fired. */
  | { local: 'waitTimeout'; wait: string };

export const isEnvelope = (m: ActorMessage): m is Envelope => !('local' in m);

/**
 * An envelope draft of this run. `key` names the emission deterministically (see EnvelopeDraft):
 * an actor re-run after a crash must produce the same keys in the same situations.
 */
export function draft(s: { runId: string; trace: TraceContext | null }, o: Note): EnvelopeDraft {
  // The fields in the order drafts always had them (what the envelope's JSON shows).
  const { key, from, to, causationId, ...body } = o;
  return { runId: s.runId, from, to, ...body, causationId, trace: s.trace, dedupeKey: key };
}

/** What an actor emits: where from and to, its type with a payload of that type, its cause and its key. */
export type Note<T extends EnvelopeType = EnvelopeType> = { from: ActorPath; to: ActorPath; causationId: string | null; key: string } & Typed<T>;

/**
 * The actor name of one execution of a node (or swarm branch): plain for the first, with
 * `@iteration.attempt` after, so every execution has its own path and its own effect keys.
 */
export function executionName(base: string, iteration: number, attempt: number): string {
  return iteration === 1 && attempt === 1 ? base : `${base}@${iteration}.${attempt}`;
}
