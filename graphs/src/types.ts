import { z } from 'zod';

export const AGENT_KINDS = ['supervisor', 'pipeline', 'swarm'] as const;
export const AgentKindSchema = z.enum(AGENT_KINDS);
export type AgentKind = z.infer<typeof AgentKindSchema>;

/** Node ids that may not be used: `input` names the run input in contexts and prompts. */
export const RESERVED_NODE_IDS: ReadonlySet<string> = new Set(['input']);

const positiveInt = z.number().int().positive();

export const BudgetSchema = z.strictObject({
  tokens: positiveInt.optional(),
  tools: positiveInt.optional(),
  wallClockSec: z.number().positive().finite().optional(),
  perTool: z.record(z.string().min(1), positiveInt).optional(),
  /** Dollars, priced from the per-model price table (AO_PRICES). */
  usd: z.number().positive().finite().optional(),
  /**
   * Soft limits (of the run's tokens, tool calls, dollars): a call that would pass one does not
   * stop the run; the run waits for a person to grant more (up to the hard limit, if any), deny
   * (the run ends `budget_exceeded`) or fork it with a new budget. See {@link BudgetAnswerSchema}.
   */
  soft: z.strictObject({ tokens: positiveInt.optional(), tools: positiveInt.optional(), usd: z.number().positive().finite().optional() }).optional(),
});
/** Hard limits of a run: total tokens, total tool calls, wall clock, and per-tool call caps. */
export type Budget = z.infer<typeof BudgetSchema>;

export const RetrySchema = z.strictObject({
  /** Retries after the first attempt (0 = no retry). */
  attempts: z.number().int().min(0).max(20),
  /** Delay before the first retry; doubled on each further retry. */
  backoffMs: z.number().int().min(0).max(600_000).default(200),
  maxBackoffMs: z.number().int().min(0).max(3_600_000).default(30_000),
});
export type RetryPolicy = z.infer<typeof RetrySchema>;

/** What a finished node leaves in the run context. */
export const NodeOutputSchema = z.object({
  text: z.string(),
  tools: z
    // In the order the agent loop writes them: a parsed output serialises as the node wrote it
    // (the store keeps a run's output as a reference to its nodes' when they are equal).
    .array(z.object({ name: z.string(), args: z.unknown(), ok: z.boolean(), result: z.unknown() }))
    .optional(),
  branches: z.array(z.string()).optional(),
  /** A routing supervisor's choice: the successors that run next (edges to the others are not taken). */
  route: z.array(z.string()).optional(),
});
export type NodeOutput = z.infer<typeof NodeOutputSchema>;

/** What edge predicates and `args` functions see. */
export interface RunContext<I = unknown> {
  readonly input: I;
  /** Answers to approvals so far, by node id (the latest iteration's). */
  readonly approvals?: Readonly<Record<string, unknown>>;
  /** Outputs of the nodes finished so far, by node id (the latest iteration for loop nodes). */
  readonly outputs: Readonly<Record<string, NodeOutput>>;
  /** How many times each node has started in this run. */
  readonly iterations: Readonly<Record<string, number>>;
}

export type EdgePredicate<I = unknown> = (ctx: RunContext<I>) => unknown;
/** Map the run context to tool arguments, by tool name; the node then calls those tools directly. */
export type ArgsMapper<I = unknown> = (ctx: RunContext<I>) => Record<string, unknown>;

/** What a person answers to an approval when the node declares no schema of its own. */
export const ApprovalAnswerSchema = z.strictObject({
  approved: z.boolean(),
  comment: z.string().max(10_000).optional(),
});
export type ApprovalAnswer = z.infer<typeof ApprovalAnswerSchema>;

/** What a person answers when a run reaches a soft budget limit. */
export const BudgetAnswerSchema = z.discriminatedUnion('decision', [
  /** Raise the soft limits by these amounts (default: by the soft limit reached, once more). */
  z.strictObject({
    decision: z.literal('grant'),
    tokens: positiveInt.optional(),
    tools: positiveInt.optional(),
    usd: z.number().positive().finite().optional(),
    comment: z.string().max(2000).optional(),
  }),
  z.strictObject({ decision: z.literal('deny'), comment: z.string().max(2000).optional() }),
  /** End this run (`budget_exceeded`) and go on in a fork from its latest step with this budget. */
  z.strictObject({ decision: z.literal('fork'), budget: z.record(z.string(), z.unknown()), comment: z.string().max(2000).optional() }),
]);
export type BudgetAnswer = z.infer<typeof BudgetAnswerSchema>;

/** What a person answers to an agent's question (`interrupt`) when the node declares no schema. */
export const InterruptAnswerSchema = z.strictObject({ answer: z.string().max(100_000) });

const isZodType = (v: unknown): v is z.ZodType => !!v && typeof v === 'object' && typeof (v as { safeParse?: unknown }).safeParse === 'function';
const zodSchema = z.custom<z.ZodType>(isZodType, 'a zod schema');

/** When a wait times out: what happens (`approve`/`reject` answer an approval; `fail` ends the run failed). */
export const WAIT_TIMEOUT_ACTIONS = ['approve', 'reject', 'fail'] as const;

const waitOptions = {
  /** Seconds to wait for the answer; without it a wait lasts until it is answered or the run is cancelled. */
  timeoutSec: z
    .number()
    .positive()
    .finite()
    .max(366 * 24 * 3600)
    .optional(),
  /**
   * Whether the time spent waiting counts against the run's `wallClockSec` budget. By default it
   * does not: a run that waits three days for a person is not out of time when the answer comes.
   */
  countWallClock: z.boolean().default(false),
};

/**
 * A person's approval before the node runs. The run stops (`waiting`), its actors are
 * checkpointed and stopped, and an answer (POST /runs/:id/signal) that fits `schema` (default
 * `{approved: boolean, comment?: string}`) resumes it on any node: approved (an answer whose
 * `approved` is not `false`), the node runs with the answer in its context; rejected, the node is
 * skipped (as if none of its in-edges had been taken).
 */
export const ApprovalOptionsSchema = z.strictObject({
  prompt: z.string().min(1).max(10_000),
  schema: zodSchema.optional(),
  ...waitOptions,
  /** What a timeout does (default `reject`). */
  onTimeout: z.enum(WAIT_TIMEOUT_ACTIONS).default('reject'),
});
export type ApprovalOptions = z.output<typeof ApprovalOptionsSchema>;

/**
 * Lets the node's agent ask a person mid-node: it is offered an `ask_human` tool; the call makes
 * the run wait (checkpointed, passivated) and the person's answer (fitting `schema`, default
 * `{answer: string}`) is the tool's result. Nothing the agent did before the question runs again.
 */
export const InterruptOptionsSchema = z.strictObject({
  /** What the tool's description tells the model about when to ask. */
  prompt: z.string().min(1).max(10_000).optional(),
  schema: zodSchema.optional(),
  ...waitOptions,
  /** What a timeout does: `fail` ends the run failed; otherwise the model is told nobody answered (default). */
  onTimeout: z.enum(['fail', 'continue']).default('continue'),
});
export type InterruptOptions = z.output<typeof InterruptOptionsSchema>;

/** The serialisable part of node options, validated by zod. */
export const NodeOptionsSchema = z.strictObject({
  agent: AgentKindSchema,
  llm: z
    .string()
    .regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'an LLM profile name: letters, digits, _ . @ -')
    .default('default'),
  tools: z.array(z.string().min(1)).default([]),
  concurrency: positiveInt.max(256).optional(),
  instructions: z.string().optional(),
  retry: RetrySchema.optional(),
  timeoutSec: z.number().positive().finite().optional(),
  /**
   * Model calls of the node's agent loop (the last offers no tools, so the model answers). Up to
   * 10,000: long tool-calling conversations are a workload we measure (bench W6: 1,000 turns).
   */
  maxTurns: positiveInt.max(10_000).default(4),
  maxIterations: positiveInt.optional(),
  maxTokens: positiveInt.default(1024),
  /**
   * Supervisor nodes: the model picks which of the node's successors run next (a `route` tool
   * offered with the successors as choices; validated). An edge's `when` still has to hold.
   * Without a choice, every successor whose `when` holds runs, as for other nodes.
   */
  route: z.boolean().optional(),
  /**
   * Supervisor nodes: the model may plan up to this many sub-tasks per call of a `delegate` tool;
   * each runs as a child agent (with the node's tools) in parallel, and their answers come back.
   */
  delegate: positiveInt.max(16).optional(),
  /** A person approves (or rejects) the node before it runs; see {@link ApprovalOptionsSchema}. */
  approval: ApprovalOptionsSchema.optional(),
  /** The node's agent may ask a person mid-node; see {@link InterruptOptionsSchema}. */
  interrupt: InterruptOptionsSchema.optional(),
  /** A sub-budget of this node, charged against it and against the run's budget. */
  budget: z
    .strictObject({
      tokens: positiveInt.optional(),
      tools: positiveInt.optional(),
      usd: z.number().positive().finite().optional(),
      perTool: z.record(z.string().min(1), positiveInt).optional(),
    })
    .optional(),
});

export type NodeOptionsInput<I = unknown> = z.input<typeof NodeOptionsSchema> & { args?: ArgsMapper<I> };

export interface NodeDef<I = unknown> extends z.output<typeof NodeOptionsSchema> {
  readonly id: string;
  readonly args?: ArgsMapper<I>;
}

export interface EdgeDef<I = unknown> {
  readonly from: string;
  readonly to: string;
  readonly when?: EdgePredicate<I>;
  /** True for an edge that closes a cycle (found by a depth-first walk from the entries). */
  readonly back: boolean;
}

/** What a finished run of this graph keeps. */
export const RetentionSchema = z.strictObject({
  /** Keep only the latest N checkpoints of a finished run. */
  keepCheckpoints: z.number().int().min(0).optional(),
  /** Delete a finished run (row, events, checkpoints) this many seconds after it finished. */
  ttlSec: z.number().positive().optional(),
});
export type Retention = z.infer<typeof RetentionSchema>;

/**
 * Turns a checkpoint written by an older version of the graph into one this version can resume.
 * The state is the run supervisor's checkpoint (per-node states, edge states, outputs).
 */
export type CheckpointMigration = (state: unknown) => unknown;

/** A built, validated, frozen graph. */
export interface GraphDef<I = unknown> {
  readonly name: string;
  readonly nodes: ReadonlyArray<NodeDef<I>>;
  readonly edges: ReadonlyArray<EdgeDef<I>>;
  readonly budget: Budget;
  /** Whether a run may loosen the budget (POST /runs `budget`); tightening is always allowed. */
  readonly budgetOverridable: boolean;
  readonly entries: ReadonlyArray<string>;
  readonly inputSchema?: z.ZodType<I>;
  /** sha256 of the canonical definition, including predicate and mapper source text. */
  readonly version: string;
  readonly retention: Retention;
  /** Versions whose runs this version may resume, with the migration of their checkpoints. */
  readonly migrations: Readonly<Record<string, CheckpointMigration>>;
  /** For each back edge `from->to`, the nodes of the loop it closes. */
  readonly loops: ReadonlyArray<{ from: string; to: string; body: ReadonlyArray<string> }>;
  node(id: string): NodeDef<I> | undefined;
}
