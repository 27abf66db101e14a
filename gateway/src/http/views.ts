import { z } from 'zod';
import { ApprovalAnswerSchema, BudgetSchema, InterruptAnswerSchema, schemaJson } from '@ao/graphs';
import type { GraphDef } from '@ao/graphs';
import {
  CheckpointRecordSchema,
  EnvelopeGistSchema,
  NewRunIdSchema,
  EnvelopeSchema,
  ErrorInfoSchema,
  NodeStateSchema,
  REPLAY_MODES,
  ReplayInfoSchema,
  ReplayOverridesSchema,
  RUN_ID_PREFIX,
  RUN_STATUSES,
  UsageSchema,
  WaitInfoSchema,
} from '@ao/runtime';
import type { RunRecord } from '@ao/runtime';

/** Ids, names and cursors: printable and safe for every store (no NUL, no control characters). */
const Name = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9_.:-]+$/, 'letters, digits and _ . : - only');

const MAX_DEPTH = 64;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
/**
 * Why a JSON value cannot be stored as is (Postgres jsonb refuses NUL and unpaired surrogates; a
 * very deep value would blow a stack somewhere), or undefined when it can.
 */
export function unstorable(v: unknown, depth = 0): string | undefined {
  if (depth > MAX_DEPTH) return `nested deeper than ${MAX_DEPTH} levels`;
  const badString = (s: string) => (s.includes('\u0000') ? 'contains a NUL character' : LONE_SURROGATE.test(s) ? 'contains an unpaired surrogate' : undefined);
  if (typeof v === 'string') return badString(v);
  if (Array.isArray(v)) {
    for (const x of v) {
      const why = unstorable(x, depth + 1);
      if (why) return why;
    }
  } else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) {
      const why = badString(k) ?? unstorable(x, depth + 1);
      if (why) return why;
    }
  }
  return undefined;
}

/** The HTTP API's schemas: validated on the way in, serialised on the way out, the same ones. */
export const StartRunBody = z.strictObject({
  graph: z.string().min(1).max(128),
  input: z
    .unknown()
    .optional()
    .superRefine((v, ctx) => {
      const why = unstorable(v);
      if (why) ctx.addIssue({ code: 'custom', message: `input ${why}` });
    }),
  budget: BudgetSchema.optional(),
});

/** `Idempotency-Key` on POST /runs: 1 to 255 printable ASCII characters. Other headers pass through untouched. */
export const StartRunHeaders = z.looseObject({
  'idempotency-key': z
    .string()
    .min(1)
    .max(255)
    .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')
    .optional(),
});

/** 202 to POST /runs and POST /runs/:id/cancel. */
export const Accepted = z.object({ id: z.string(), status: z.string() });

/** POST /runs/:id/replay: from which checkpoint, how (live, recorded, lenient), and for a fork what changes. */
export const ReplayBody = z.strictObject({
  fromStep: z.number().int().min(0).max(2_147_483_647),
  mode: z.enum(REPLAY_MODES).default('live'),
  overrides: ReplayOverridesSchema.optional().superRefine((v, ctx) => {
    const why = unstorable(v);
    if (why) ctx.addIssue({ code: 'custom', message: `overrides ${why}` });
  }),
});

/** GET /runs/:a/diff/:b: where two runs first differ, actor by actor, and their per-node output differences. */
export const RunDiffView = z.object({
  a: z.string(),
  b: z.string(),
  identical: z.boolean(),
  events: z.object({ a: z.number().int(), b: z.number().int() }),
  first: z
    .object({ actor: z.string(), index: z.number().int(), a: EnvelopeGistSchema.nullable(), b: EnvelopeGistSchema.nullable(), diff: z.array(z.string()) })
    .nullable(),
  nodes: z.array(z.object({ node: z.string(), a: z.unknown(), b: z.unknown() })),
});
export const DiffParams = z.object({ a: z.string().min(1).max(128), b: z.string().min(1).max(128) });

export const RunIdParams = z.object({ id: z.string().min(1).max(128) });
export const CheckpointParams = RunIdParams.extend({ step: z.coerce.number().int().min(0).max(2_147_483_647) });

export const CheckpointView = CheckpointRecordSchema;
export const CheckpointSummaryView = CheckpointRecordSchema.omit({ state: true });
export const GraphNameParams = z.object({ name: z.string().min(1).max(128) });

export const ListRunsQuery = z.strictObject({
  status: z.enum(RUN_STATUSES).optional(),
  graph: Name.optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().min(1).max(64).optional(),
  /** Runs whose id starts with this (any length, any case: a search, not an address). */
  q: z.string().regex(RUN_ID_PREFIX, 'an id prefix: hex digits and dashes').optional(),
  /** Runs created at or after this instant (ISO 8601 with an offset, e.g. 2026-12-04T18:00:00Z). */
  since: z.iso.datetime({ offset: true }).optional(),
  /** Runs created before this instant (ISO 8601 with an offset). */
  until: z.iso.datetime({ offset: true }).optional(),
});

export const ListEventsQuery = z.strictObject({
  after: z.coerce.number().int().min(0).max(2_147_483_647).default(0),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const RunSummary = z.object({
  id: z.string(),
  graph: z.string(),
  graphVersion: z.string(),
  status: z.enum(RUN_STATUSES),
  usage: UsageSchema,
  error: ErrorInfoSchema.nullable(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  /** The run this one replays or forks, if any. */
  replayOf: z.string().nullable(),
  /** Whose run it is (the tenant of the key that started it, or of its original). */
  tenant: z.string(),
  /** What the run waits for a person to answer (POST /runs/:id/signal); empty unless it waits. */
  waits: z.array(WaitInfoSchema),
});
const Spent = z.object({ tokens: z.number(), tools: z.number(), usd: z.number(), perTool: z.record(z.string(), z.number()) });
const Amounts = z.object({ tokens: z.number(), tools: z.number(), usd: z.number() });
/**
 * The time the wall-clock budget has counted: the run's time less its sleeps for a person on waits
 * that stop the clock (`pausedMs`), as the run supervisor moves its deadline; `paused` while it
 * sleeps on one. Absent for a replay (its deadline comes from the original's checkpoint).
 */
const WallClock = z.object({ usedMs: z.number(), pausedMs: z.number(), paused: z.boolean() });
/** The cost ledger rolled up from the run's budget envelopes (GET /runs/:id/usage). */
export const UsageView = z.object({
  limits: BudgetSchema,
  used: Spent,
  reserved: Amounts,
  byNode: z.record(z.string(), Spent),
  byActor: z.record(z.string(), Amounts),
  byModel: z.record(z.string(), z.object({ tokens: z.number(), usd: z.number(), calls: z.number() })),
  refusals: z.number().int(),
  /** Calls that waited for calls in flight to settle before the budget decided them; how many wait now. */
  waited: z.number().int(),
  waiting: z.number().int(),
  wallClock: WallClock.optional(),
});

export const RunView = RunSummary.extend({
  input: z.unknown(),
  output: z.unknown(),
  budget: z.record(z.string(), z.unknown()),
  nodes: z.record(z.string(), NodeStateSchema),
  traceId: z.string().nullable(),
  owner: z.string().nullable(),
  leaseExpiresAt: z.string().nullable(),
  cancelRequested: z.boolean(),
  lastSeq: z.number().int(),
  updatedAt: z.string(),
  /** For a replay or fork: the original, the step, the mode, the overrides and the first divergence. */
  replay: ReplayInfoSchema.nullable(),
  /**
   * Where it ran, in a cluster: each runtime node that ran its steps (its host, and its hosts
   * before a failover) or its swarm branches (node tasks), in order of first appearance, with how
   * many it finished there and the seqs of the first and last. `owner` is its host now.
   */
  ranOn: z.array(z.object({ node: z.string(), done: z.number().int(), firstSeq: z.number().int(), lastSeq: z.number().int() })).optional(),
  /** Usage against every limit, live while the run goes (settled and reserved). */
  budgetUsage: z.object({ limits: BudgetSchema, used: Spent, reserved: Amounts, wallClock: WallClock.optional() }).nullable().optional(),
});
export type RunViewT = z.infer<typeof RunView>;

export const GraphView = z.object({
  name: z.string(),
  version: z.string(),
  entries: z.array(z.string()),
  nodes: z.array(
    z.object({
      id: z.string(),
      agent: z.string(),
      llm: z.string(),
      tools: z.array(z.string()),
      concurrency: z.number().optional(),
      instructions: z.string().optional(),
      retry: z.object({ attempts: z.number(), backoffMs: z.number(), maxBackoffMs: z.number() }).optional(),
      timeoutSec: z.number().optional(),
      maxTurns: z.number(),
      maxIterations: z.number().optional(),
      hasArgs: z.boolean(),
      /** A person approves the node before it runs (the answer's JSON Schema in `schema`). */
      approval: z
        .object({ prompt: z.string(), schema: z.unknown(), timeoutSec: z.number().optional(), onTimeout: z.string(), countWallClock: z.boolean() })
        .optional(),
      /** The node's agent may ask a person (`ask_human`). */
      interrupt: z
        .object({ prompt: z.string().optional(), schema: z.unknown(), timeoutSec: z.number().optional(), onTimeout: z.string(), countWallClock: z.boolean() })
        .optional(),
    }),
  ),
  edges: z.array(z.object({ from: z.string(), to: z.string(), conditional: z.boolean(), back: z.boolean() })),
  budget: BudgetSchema,
  hasInputSchema: z.boolean(),
});
export type GraphViewT = z.infer<typeof GraphView>;

/** Every 4xx and 5xx answer: a stable `AO_*` code, a message for people, and the failing field when there is one. */
export const ErrorView = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    field: z.string().optional(),
    /** The run ids an ambiguous id prefix matches (AO_RUN_ID_AMBIGUOUS). */
    candidates: z.array(z.string()).optional(),
  }),
});

/** GET /graphs/:name: the summary, plus the JSON Schema the run input must satisfy (null: the graph takes any input). */
export const GraphDetailView = GraphView.extend({
  /**
   * zod 4's `z.toJSONSchema` of the graph's input schema, as a client writes the input (fields
   * with a default are optional). Parts JSON Schema cannot express are `{}`; the server still
   * checks the input with the zod schema itself.
   */
  inputSchema: z
    .record(z.string(), z.unknown())
    .nullable()
    .describe('The JSON Schema (draft 2020-12) of the run input a client sends; null when the graph takes any input.'),
});
export type GraphDetailViewT = z.infer<typeof GraphDetailView>;

export const EventsPage = z.object({ events: z.array(EnvelopeSchema), next: z.number().int().nullable() });
export const Health = z.object({
  /** `draining` (503) once the server is shutting down: send new runs elsewhere. */
  status: z.enum(['ok', 'draining']),
  node: z.string(),
  /**
   * `node`: this process hosts runs (a runtime node, with or without a gateway). `gateway`: a
   * gateway without a node (`ao serve --no-node`): it takes runs in and follows them, the cluster's
   * nodes host them (GET /nodes lists those); `node` is then this gateway's own id.
   */
  role: z.enum(['node', 'gateway']),
  store: z.string(),
  bus: z.string(),
  llm: z.string(),
  activeRuns: z.number().int(),
});

export function runSummary(r: RunRecord): z.infer<typeof RunSummary> {
  const { id, graph, graphVersion, status, usage, error, createdAt, startedAt, finishedAt, tenant, waits } = r;
  return { id, graph, graphVersion, status, usage, error, createdAt, startedAt, finishedAt, replayOf: r.replay?.of ?? null, tenant, waits };
}

export function runView(r: RunRecord): RunViewT {
  return { ...r, replayOf: r.replay?.of ?? null };
}

export function graphView(g: GraphDef<unknown>): GraphViewT {
  return {
    name: g.name,
    version: g.version,
    entries: [...g.entries],
    nodes: g.nodes.map(({ args, tools, approval, interrupt, ...n }) => ({
      ...n,
      tools: [...tools],
      hasArgs: args !== undefined,
      ...(approval ? { approval: { ...approval, schema: schemaJson(approval.schema ?? ApprovalAnswerSchema) } } : {}),
      ...(interrupt ? { interrupt: { ...interrupt, schema: schemaJson(interrupt.schema ?? InterruptAnswerSchema) } } : {}),
    })),
    edges: g.edges.map((e) => ({ from: e.from, to: e.to, conditional: e.when !== undefined, back: e.back })),
    budget: g.budget,
    hasInputSchema: g.inputSchema !== undefined,
  };
}

/** A graph's input schema as the JSON Schema of what a client sends; null when the graph has none. */
export function inputJsonSchema(g: GraphDef<unknown>): Record<string, unknown> | null {
  if (!g.inputSchema) return null;
  try {
    return z.toJSONSchema(g.inputSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  } catch (e) {
    // A cycle without an id, say: still a schema (any input), and it says why.
    return { description: `not representable as JSON Schema (${(e as Error).message}); the server checks the input when a run starts` };
  }
}

export function graphDetail(g: GraphDef<unknown>): GraphDetailViewT {
  return { ...graphView(g), inputSchema: inputJsonSchema(g) };
}

/** An answer to a wait of a run: POST /runs/:id/signal. */
export const SignalBody = z.strictObject({
  /** The node whose wait it answers. */
  node: z.string().min(1).max(128),
  /** The wait (from the run's `waits`): pass it for exactly-once answers; without it, the node's open (or next) wait. */
  waitId: z.string().min(1).max(512).optional(),
  /** The answer, checked against the wait's schema (approvals default to {approved, comment?}). */
  payload: z.unknown(),
});

export const SignalAccepted = z.object({
  id: z.string(),
  status: z.enum(RUN_STATUSES),
  /** The stored answer's id. */
  signal: z.string(),
  /** The wait it answers (null: it came before the node's wait opened; the next one takes it). */
  wait: z.string().nullable(),
  /** True when this repeats an answer already given: nothing changed. */
  duplicate: z.boolean(),
});

/** GET /runs/:id/export: `checkpoints=false` leaves the checkpoints out (a smaller file that verifies and replays from step 0). */
export const ExportQuery = z.strictObject({
  checkpoints: z.enum(['true', 'false']).default('true'),
});

/** POST /runs/import?as=ID: store the run under a new id (its envelope ids made again: see Verifier.rename). */
export const ImportQuery = z.strictObject({
  as: NewRunIdSchema.optional(),
});

/** 201 to POST /runs/import. */
export const Imported = z.object({ id: z.string(), graph: z.string(), status: z.string(), events: z.number().int(), checkpoints: z.number().int() });
