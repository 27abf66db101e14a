import { z } from 'zod';
import { NodeOutputSchema } from '@ao/graphs';
import type { Spent } from '@ao/graphs/spend';
import { NodeStateSchema, UsageSchema, WaitInfoSchema } from '@ao/runtime';
import type { Ledger } from '../budget/ledger.js';
import type { SchedulerState } from './scheduler-types.js';

/**
 * What a checkpoint holds: the run supervisor's state at a step and its live children, each with
 * the id of the start message it was processing (its mailbox). Children are deterministic given
 * that message and the recorded effects, so their own progress needs no snapshot: on recovery they
 * run again and replay. State, not history: the size depends on the graph, not on the run's length.
 */
const SpentSchema = z.object({ tokens: z.number(), tools: z.number(), usd: z.number(), perTool: z.record(z.string(), z.number()) });

/** The budget ledger's moving parts at the checkpoint's seq (its limits come from the run's budget). */
export const LedgerStateSchema = z.object({
  used: SpentSchema,
  byNode: z.record(z.string(), SpentSchema),
  reserved: z.record(z.string(), z.object({ node: z.string(), actor: z.string(), tokens: z.number(), usd: z.number(), tool: z.string().optional() })),
  /** Soft limits as raised by people so far. */
  soft: z.object({ tokens: z.number().optional(), tools: z.number().optional(), usd: z.number().optional() }).optional(),
});

export const CheckpointStateSchema = z.object({
  v: z.literal(1),
  step: z.number().int().min(0),
  sched: z.object({
    nodes: z.record(z.string(), NodeStateSchema),
    edges: z.array(z.enum(['unresolved', 'taken', 'not_taken'])),
    deferred: z.array(z.object({ from: z.string(), to: z.string() })),
    outputs: z.record(z.string(), NodeOutputSchema),
    finished: z.boolean(),
    waits: z.record(z.string(), WaitInfoSchema).optional(),
    closedWaits: z.array(z.string()).optional(),
    approvals: z.record(z.string(), z.unknown()).optional(),
  }),
  /** Set when the run was passivated: when (epoch ms), so a wall clock that does not count the wait can be moved on. */
  pausedAt: z.number().optional(),
  usage: UsageSchema,
  /** The wall-clock deadline (epoch ms), fixed when the run started: it survives restarts. */
  deadline: z.number().optional(),
  live: z.array(z.object({ node: z.string(), name: z.string(), startId: z.string() })),
  /**
   * The budget ledger as of this checkpoint's last event, so a restore (or a replay) needs no
   * fold over the run's history. Absent in checkpoints written before it was added.
   */
  ledger: LedgerStateSchema.optional(),
  /**
   * Parts of the state held by the run's log and left out of the stored state (issue 22): each
   * is the value at `field` of the payload of envelope `id` (a node's output: its
   * `node.completed`), put back at `path` when the checkpoint is read (the store does it).
   * Absent in checkpoints written before it was added, and in a replay's (its outputs may be its
   * original's).
   */
  $refs: z.array(z.object({ path: z.array(z.string()), id: z.string(), field: z.array(z.string()) })).optional(),
});
export type CheckpointState = z.infer<typeof CheckpointStateSchema>;

/** `true` when A and B are the same type (optional fields too, at every depth): a schema and the type it stores say the same. */
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
// The schemas of what a checkpoint stores and the types the code holds (which document each field)
// describe the same data: a field added to one and not the other does not compile.
true satisfies Same<z.infer<typeof SpentSchema>, Spent>;
true satisfies Same<z.infer<typeof LedgerStateSchema>, Pick<Ledger, 'used' | 'byNode' | 'reserved' | 'soft'>>;
true satisfies Same<CheckpointState['sched'], SchedulerState>;
