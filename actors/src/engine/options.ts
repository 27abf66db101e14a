import type { AoError, GraphBuilder, GraphDef } from '@ao/graphs';
import type { Bus, Clock, NodeIdentity, Store, ToolRegistry } from '@ao/runtime';
import type { PriceTable } from '../budget/ledger.js';
import type { LlmResolver } from '../services.js';

/** The placeholder owner of a run waiting in the cluster's work queue for a node to take it. */
export const QUEUE_OWNER = '~queue';

/**
 * How often `waitForRun` reads the row of a run hosted elsewhere when no signal came: the last
 * resort for a signal lost without a reconnect (its host died between the commit and the signal).
 */
export const FOLLOW_RESYNC_MS = 15_000;

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
