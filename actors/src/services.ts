import type { GraphDef } from '@ao/graphs';
import type { ActorPath, ActorRef, Clock, Envelope, LlmPort, RunJournal, ToolRegistry, TraceContext } from '@ao/runtime';

/** Resolves a node's `llm` profile name to an adapter. */
export type LlmResolver = (profile: string) => LlmPort;

/** What the actors of one run share: set up by the engine, passed explicitly (no ambient context). */
export interface RunServices {
  readonly runId: string;
  readonly def: GraphDef<unknown>;
  readonly input: unknown;
  readonly journal: RunJournal;
  readonly llm: LlmResolver;
  readonly tools: ToolRegistry;
  readonly clock: Clock;
  readonly trace: TraceContext;
  /** Make an actor reachable by its path for envelopes from the bus. */
  register(ref: ActorRef<ActorMessage>): void;
  unregister(path: ActorPath): void;
  /** Called once by the run supervisor when the run has ended. */
  finished(): void;
}

/** What our actors receive: envelopes from the bus, or a local timer tick (never journaled itself). */
export type ActorMessage = Envelope | { local: 'retry'; node: string; branch?: number };

export const isEnvelope = (m: ActorMessage): m is Envelope => !('local' in m);
