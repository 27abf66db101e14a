import { z } from 'zod';
import { NodeOutputSchema } from '@ao/graphs';
import { DivergenceSchema, ErrorInfoSchema, ReplayInfoSchema, UsageSchema, WaitInfoSchema } from '../store/records.js';

/** What a node sees of the run: the same data edge predicates and `args` functions get. */
export const NodeContextSchema = z.object({
  input: z.unknown(),
  outputs: z.record(z.string(), NodeOutputSchema),
  iterations: z.record(z.string(), z.number().int()),
  /** Ids of the nodes whose outputs this node builds on (its predecessors that ran). */
  upstream: z.array(z.string()),
  /** A person's answer to the approval before this node (nodes with `approval`). */
  approval: z.unknown().optional(),
  /** Approval answers so far, by node (what edge predicates see as `approvals`). */
  approvals: z.record(z.string(), z.unknown()).optional(),
});
export type NodeContext = z.infer<typeof NodeContextSchema>;

const node = z.string().min(1);
const PartialUsage = UsageSchema.partial();

/**
 * Every envelope type and its payload: actor messages (`node.start`, `branch.completed`, ...) and
 * observations (`llm.request`, `tool.result`, `node.skipped`, ...). The one source of the
 * envelope types: {@link EnvelopeType}, {@link Payload} and {@link TypedEnvelope} are inferred
 * from it. A payload is checked against its type's schema once, where its envelope enters
 * (`parseEnvelope`: the journal's append, a bus delivery, a store read); see `typed.ts`.
 *
 * Add a type here before any code emits it (`payloads.test.ts` fails on a type an example run
 * writes that this map does not know). A schema is input = output (no defaults, no transforms):
 * the payload as written is the payload as typed.
 */
export const PAYLOADS = {
  'run.started': z.object({ graph: z.string(), version: z.string(), input: z.unknown(), budget: z.record(z.string(), z.unknown()) }),
  'run.finished': z.object({
    status: z.enum(['succeeded', 'failed', 'cancelled', 'budget_exceeded']),
    output: z.unknown().optional(),
    error: ErrorInfoSchema.optional(),
    usage: UsageSchema,
  }),
  'run.parked': z.object({ error: ErrorInfoSchema }),
  /** Nothing can go on until a person answers: the run's actors are checkpointed and stopped. */
  'run.waiting': z.object({ waits: z.array(WaitInfoSchema) }),
  /** A waiting run was woken (an answer came, or a wait timed out) and its actors restored. */
  'run.resumed': z.object({ pausedMs: z.number().int().min(0), wallClockPaused: z.boolean() }),
  /** An agent asks a person mid-node (its actor waits for `wait.resolved`). */
  'wait.registered': WaitInfoSchema,
  /** The supervisor opened a wait (an approval before a node). */
  'wait.opened': WaitInfoSchema,
  /** How a wait ended: a person's answer (with the signal's id) or its timeout. */
  'wait.resolved': z.object({
    wait: z.string(),
    node,
    kind: WaitInfoSchema.shape.kind,
    outcome: z.discriminatedUnion('kind', [
      z.object({ kind: z.literal('signal'), payload: z.unknown(), signal: z.string() }),
      z.object({ kind: z.literal('timeout'), action: z.enum(['approve', 'reject', 'fail', 'continue']) }),
    ]),
    approved: z.boolean().optional(),
  }),
  'run.migrated': z.object({ from: z.string(), to: z.string() }),
  /** The first event of a replay or fork: what it replays, from where, how, and what it overrides. */
  'run.replayed': ReplayInfoSchema.omit({ divergence: true }),
  /** Where a recorded or lenient replay first did something else than the original. */
  'replay.diverged': DivergenceSchema,
  'node.start': z.object({ node, iteration: z.number().int().positive(), attempt: z.number().int().positive(), context: NodeContextSchema }),
  /** `ranOn`: the runtime node that ran it, when it ran as a node task of a cluster (absent on the run's host). */
  'node.completed': z.object({
    node,
    iteration: z.number().int(),
    attempt: z.number().int(),
    output: NodeOutputSchema,
    usage: PartialUsage,
    ranOn: z.string().optional(),
  }),
  'node.failed': z.object({
    node,
    iteration: z.number().int(),
    attempt: z.number().int(),
    error: ErrorInfoSchema,
    usage: PartialUsage,
    /** False when retrying cannot help (or the node's own retries, e.g. a swarm's per-branch ones, are spent). */
    retryable: z.boolean(),
    ranOn: z.string().optional(),
  }),
  'node.skipped': z.object({ node, reason: z.string() }),
  'node.retry_scheduled': z.object({ node, attempt: z.number().int(), delayMs: z.number().int(), error: ErrorInfoSchema }),
  'loop.iterated': z.object({ from: node, to: node, iteration: z.number().int(), reset: z.array(z.string()) }),
  'branch.start': z.object({
    node,
    branch: z.number().int().positive(),
    of: z.number().int().positive(),
    attempt: z.number().int().positive(),
    context: NodeContextSchema,
  }),
  'branch.completed': z.object({
    node,
    branch: z.number().int(),
    attempt: z.number().int(),
    output: NodeOutputSchema,
    usage: PartialUsage,
    ranOn: z.string().optional(),
  }),
  'branch.failed': z.object({
    node,
    branch: z.number().int(),
    attempt: z.number().int(),
    error: ErrorInfoSchema,
    usage: PartialUsage,
    retryable: z.boolean(),
    ranOn: z.string().optional(),
  }),
  'branch.retry_scheduled': z.object({ node, branch: z.number().int(), attempt: z.number().int(), delayMs: z.number().int(), error: ErrorInfoSchema }),
  /** A supervisor handed a sub-task to a child agent (`<supervisor>/task-k`). */
  'task.started': z.object({ node, task: z.number().int().positive(), text: z.string() }),
  'task.completed': z.object({ node, task: z.number().int().positive(), output: NodeOutputSchema, usage: PartialUsage }),
  'task.failed': z.object({ node, task: z.number().int().positive(), error: ErrorInfoSchema, usage: PartialUsage }),
  'llm.request': z.object({
    key: z.string(),
    profile: z.string(),
    model: z.string().optional(),
    maxTokens: z.number().int(),
    messages: z.array(z.unknown()),
    tools: z.array(z.string()),
    /** sha256 of the normalised request (profile, model, parameters, messages, tool schemas): what a recorded replay compares. */
    hash: z.string().optional(),
  }),
  'llm.response': z.object({
    key: z.string(),
    model: z.string(),
    content: z.string(),
    toolCalls: z.array(z.object({ id: z.string(), name: z.string(), arguments: z.record(z.string(), z.unknown()) })),
    usage: z.object({ inputTokens: z.number().int(), outputTokens: z.number().int() }),
    finishReason: z.string(),
  }),
  'llm.failed': z.object({ key: z.string(), error: ErrorInfoSchema }),
  /**
   * A live call waits for capacity under its profile's shared limits (before it is sent). How the
   * world was at the time, not a decision: a recorded replay (which makes no call) has none, and
   * replay checks leave it out.
   */
  'llm.throttled': z.object({
    key: z.string(),
    profile: z.string(),
    tenant: z.string(),
    limit: z.enum(['requests', 'inputTokens', 'outputTokens', 'concurrent']),
    scope: z.enum(['profile', 'tenant', 'provider']),
    waitMs: z.number().int().min(0),
  }),
  'tool.call': z.object({ key: z.string(), name: z.string(), args: z.unknown(), hash: z.string().optional() }),
  'budget.request': z.discriminatedUnion('kind', [
    z.object({
      kind: z.literal('llm'),
      key: z.string(),
      node,
      actor: z.string(),
      promptTokens: z.number().int().min(0),
      maxTokens: z.number().int().positive(),
      model: z.string(),
    }),
    z.object({ kind: z.literal('tool'), key: z.string(), node, actor: z.string(), tool: z.string() }),
  ]),
  'budget.granted': z.object({
    key: z.string(),
    maxTokens: z.number().int().positive().optional(),
    reservation: z.object({ node, actor: z.string(), tokens: z.number().min(0), usd: z.number().min(0), tool: z.string().optional() }),
  }),
  'budget.refused': z.object({
    key: z.string(),
    limit: z.enum(['tokens', 'tools', 'usd', 'perTool', 'wallClockSec']),
    scope: z.string(),
    tool: z.string().optional(),
    value: z.number(),
    /** Settled usage in the scope (before the budget waited for calls in flight, used + reserved). */
    used: z.number(),
    /** What calls in flight held, and how many (absent in logs written before). */
    reserved: z.number().optional(),
    inFlight: z.number().int().min(0).optional(),
    /** The least the call needed. */
    asked: z.number().optional(),
    stop: z.boolean(),
  }),
  /**
   * A request that does not fit while other calls in flight hold part of its limit: it waits for
   * them to settle and is decided again (then `budget.granted` or `budget.refused` answers it).
   */
  'budget.waiting': z.object({
    key: z.string(),
    node,
    actor: z.string(),
    limit: z.enum(['tokens', 'tools', 'usd', 'perTool']),
    scope: z.string(),
    tool: z.string().optional(),
    value: z.number(),
    used: z.number(),
    reserved: z.number(),
    inFlight: z.number().int().min(0),
    asked: z.number(),
  }),
  'budget.settle': z.object({
    key: z.string(),
    tokens: z.number().int().min(0),
    usd: z.number().min(0),
    tool: z.string().optional(),
    model: z.string().optional(),
  }),
  'budget.release': z.object({ key: z.string() }),
  /** A request that would pass a soft limit is held (the asker waits) while a person decides. */
  'budget.held': z.object({ key: z.string(), limit: z.enum(['tokens', 'tools', 'usd']), value: z.number(), used: z.number() }),
  /** Sent to the run supervisor: a soft limit was reached; it opens a wait for a person. */
  'budget.escalated': z.object({ key: z.string(), node, actor: z.string(), limit: z.enum(['tokens', 'tools', 'usd']), value: z.number(), used: z.number() }),
  /** A person granted more: the soft limits from now on. */
  'budget.raised': z.object({ wait: z.string(), soft: z.object({ tokens: z.number().optional(), tools: z.number().optional(), usd: z.number().optional() }) }),
  'budget.exceeded': z.object({
    limit: z.enum(['tokens', 'tools', 'usd', 'perTool', 'wallClockSec']),
    scope: z.string(),
    value: z.number(),
    used: z.number(),
    reserved: z.number().optional(),
    inFlight: z.number().int().min(0).optional(),
    asked: z.number().optional(),
    actor: z.string(),
  }),
  'effect.reconciled': z.object({ key: z.string(), name: z.string(), done: z.boolean() }),
  'effect.unknown_outcome': z.object({ key: z.string(), name: z.string(), args: z.unknown() }),
  'tool.result': z.object({ key: z.string(), name: z.string(), ok: z.boolean(), result: z.unknown().optional(), error: ErrorInfoSchema.optional() }),
} as const;
