import { createHash } from 'node:crypto';
import { z } from 'zod';
import { GraphError, zodIssuePath } from './errors.js';
import { AGENT_KINDS, BudgetSchema, NodeOptionsSchema, RESERVED_NODE_IDS, RetentionSchema } from './types.js';
import type { Budget, CheckpointMigration, EdgeDef, EdgePredicate, GraphDef, NodeDef, NodeOptionsInput, Retention } from './types.js';
import { analyse } from './validate.js';
import { canonicalSource } from './fn-source.js';
import { canonicalJson } from './canonical-json.js';

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/** Validate a budget, throwing AO_GRAPH_INVALID_BUDGET naming the bad limit. */
export function parseBudget(budget: unknown, field = 'budget'): Budget {
  const r = BudgetSchema.safeParse(budget);
  if (!r.success) {
    const issue = r.error.issues[0];
    const path = zodIssuePath(issue, field);
    throw new GraphError('AO_GRAPH_INVALID_BUDGET', `${path}: ${issue?.message ?? 'invalid budget'} (limits must be positive numbers)`, {
      field: path,
    });
  }
  return r.data;
}

/**
 * Builder of a workflow graph. Each call validates what it can at once (a duplicate or reserved
 * node id, an unknown agent kind, a bad option or budget); `build()` validates the whole graph
 * (edge endpoints, entries, reachability, bounded cycles) and returns a frozen {@link GraphDef}.
 *
 * @example
 * const triage = graph('triage')
 *   .node('classify', { agent: 'supervisor' })
 *   .node('refund', { agent: 'pipeline', tools: ['stripe_refund'] })
 *   .node('escalate', { agent: 'pipeline' })
 *   .edge('classify', 'refund', (ctx) => ctx.input.intent === 'refund')
 *   .edge('classify', 'escalate', (ctx) => ctx.input.intent !== 'refund')
 *   .budget({ tokens: 8000, tools: 10, wallClockSec: 60, perTool: { stripe_refund: 1 } });
 */
export class GraphBuilder<I = unknown> {
  readonly name: string;
  private readonly nodes: NodeDef<I>[] = [];
  private readonly edges: Array<{ from: string; to: string; when?: EdgePredicate<I> }> = [];
  private limits: Budget = {};
  private keep: Retention = {};
  private overridable = false;
  private readonly migrations: Record<string, CheckpointMigration> = {};
  private readonly inputSchema: z.ZodType<I> | undefined;
  private built: GraphDef<I> | undefined;

  constructor(name: string, opts: { input?: z.ZodType<I> } = {}) {
    if (typeof name !== 'string' || !NAME_RE.test(name)) {
      throw new GraphError('AO_GRAPH_INVALID_NAME', `invalid graph name ${JSON.stringify(name)}`, { field: 'name' });
    }
    this.name = name;
    this.inputSchema = opts.input;
  }

  node(id: string, options: NodeOptionsInput<I>): this {
    this.built = undefined;
    if (typeof id !== 'string' || !NAME_RE.test(id)) {
      throw new GraphError('AO_GRAPH_INVALID_NODE_OPTIONS', `invalid node id ${JSON.stringify(id)}`, { field: 'nodes' });
    }
    if (RESERVED_NODE_IDS.has(id)) {
      throw new GraphError('AO_GRAPH_RESERVED_NODE_ID', `node id "${id}" is reserved`, { field: `nodes.${id}` });
    }
    if (this.nodes.some((n) => n.id === id)) {
      throw new GraphError('AO_GRAPH_DUPLICATE_NODE', `node "${id}" is declared twice in graph "${this.name}"`, {
        field: `nodes.${id}`,
      });
    }
    const { args, ...rest } = (options ?? {}) as NodeOptionsInput<I>;
    if (!(AGENT_KINDS as readonly unknown[]).includes(rest.agent)) {
      throw new GraphError(
        'AO_GRAPH_UNKNOWN_AGENT',
        `node "${id}" has unknown agent kind ${JSON.stringify(rest.agent)}; use one of ${AGENT_KINDS.join(', ')}`,
        { field: `nodes.${id}.agent` },
      );
    }
    const r = NodeOptionsSchema.safeParse(rest);
    if (!r.success) {
      const path = zodIssuePath(r.error.issues[0], `nodes.${id}`);
      throw new GraphError('AO_GRAPH_INVALID_NODE_OPTIONS', `${path}: ${r.error.issues[0]?.message}`, { field: path });
    }
    if (args !== undefined && typeof args !== 'function') {
      throw new GraphError('AO_GRAPH_INVALID_NODE_OPTIONS', `nodes.${id}.args must be a function`, { field: `nodes.${id}.args` });
    }
    if (r.data.concurrency !== undefined && r.data.agent !== 'swarm') {
      throw new GraphError('AO_GRAPH_INVALID_NODE_OPTIONS', `nodes.${id}.concurrency is only for swarm nodes`, {
        field: `nodes.${id}.concurrency`,
      });
    }
    for (const k of ['route', 'delegate'] as const) {
      if (r.data[k] !== undefined && r.data.agent !== 'supervisor') {
        throw new GraphError('AO_GRAPH_INVALID_NODE_OPTIONS', `nodes.${id}.${k} is only for supervisor nodes`, { field: `nodes.${id}.${k}` });
      }
    }
    if (r.data.interrupt !== undefined && r.data.agent === 'swarm') {
      throw new GraphError('AO_GRAPH_INVALID_NODE_OPTIONS', `nodes.${id}.interrupt is for pipeline and supervisor nodes`, { field: `nodes.${id}.interrupt` });
    }
    this.nodes.push({ id, ...r.data, ...(args ? { args } : {}) });
    return this;
  }

  /** An edge `from -> to`, taken only when `when(ctx)` is truthy (always, without `when`). */
  edge(from: string, to: string, when?: EdgePredicate<I>): this {
    this.built = undefined;
    if (when !== undefined && typeof when !== 'function') {
      throw new GraphError('AO_GRAPH_INVALID_NODE_OPTIONS', `edge ${from} -> ${to}: when must be a function`, { field: 'edges' });
    }
    if (this.edges.some((e) => e.from === from && e.to === to)) {
      throw new GraphError('AO_GRAPH_DUPLICATE_EDGE', `edge ${from} -> ${to} is declared twice`, { field: 'edges' });
    }
    this.edges.push({ from, to, ...(when ? { when } : {}) });
    return this;
  }

  /** The run's hard limits. With `overridable`, a run may also loosen them (tightening is always allowed). */
  budget(limits: Budget, opts: { overridable?: boolean } = {}): this {
    this.built = undefined;
    this.limits = parseBudget(limits);
    this.overridable = opts.overridable ?? false;
    return this;
  }

  /** How long the events and checkpoints of this graph's finished runs are kept. */
  retention(policy: Retention): this {
    this.built = undefined;
    const r = RetentionSchema.safeParse(policy);
    if (!r.success) {
      const path = zodIssuePath(r.error.issues[0], 'retention');
      throw new GraphError('AO_GRAPH_INVALID_NODE_OPTIONS', `${path}: ${r.error.issues[0]?.message}`, { field: path });
    }
    this.keep = r.data;
    return this;
  }

  /**
   * Declare that runs started on graph version `fromVersion` may resume on this version, after
   * `migrate` (identity by default) turns their checkpoint into one this version understands.
   * Without it, a node refuses to resume a run whose graph has changed.
   */
  compatibleWith(fromVersion: string, migrate: CheckpointMigration = (s) => s): this {
    this.built = undefined;
    this.migrations[fromVersion] = migrate;
    return this;
  }

  /** Validate the whole graph and freeze it. Cached until the builder changes. */
  build(): GraphDef<I> {
    if (this.built) return this.built;
    const { entries, backEdges, loops } = analyse(this.nodes, this.edges);
    for (const n of this.nodes) {
      if (n.route && !this.edges.some((e, i) => e.from === n.id && !backEdges.has(i))) {
        throw new GraphError('AO_GRAPH_INVALID_NODE_OPTIONS', `nodes.${n.id}.route: the node has no successor to route to`, { field: `nodes.${n.id}.route` });
      }
    }
    // A node's sub-budget is carved from the run's: no limit of it may exceed the run's.
    for (const n of this.nodes) {
      for (const k of ['tokens', 'tools', 'usd'] as const) {
        const mine = n.budget?.[k];
        const run = this.limits[k];
        if (mine !== undefined && run !== undefined && mine > run) {
          throw new GraphError('AO_GRAPH_INVALID_BUDGET', `nodes.${n.id}.budget.${k} (${mine}) is more than the run's budget.${k} (${run})`, {
            field: `nodes.${n.id}.budget.${k}`,
          });
        }
      }
      for (const tool of Object.keys(n.budget?.perTool ?? {})) {
        if (!n.tools.includes(tool)) {
          throw new GraphError('AO_GRAPH_UNKNOWN_TOOL', `nodes.${n.id}.budget.perTool names "${tool}", which the node does not use`, {
            field: `nodes.${n.id}.budget.perTool.${tool}`,
          });
        }
      }
    }
    for (const k of ['tokens', 'tools', 'usd'] as const) {
      const soft = this.limits.soft?.[k];
      const hard = this.limits[k];
      if (soft !== undefined && hard !== undefined && soft >= hard) {
        throw new GraphError('AO_GRAPH_INVALID_BUDGET', `budget.soft.${k} (${soft}) must be below budget.${k} (${hard})`, { field: `budget.soft.${k}` });
      }
    }
    for (const tool of Object.keys(this.limits.perTool ?? {})) {
      if (!this.nodes.some((n) => n.tools.includes(tool))) {
        throw new GraphError('AO_GRAPH_UNKNOWN_TOOL', `budget.perTool names "${tool}", which no node uses`, {
          field: `budget.perTool.${tool}`,
        });
      }
    }
    // Frozen all the way down: a built graph cannot be changed past its validation and hash.
    const nodes = this.nodes.map(
      (n) =>
        Object.freeze({
          ...n,
          tools: Object.freeze([...n.tools]),
          ...(n.retry ? { retry: Object.freeze({ ...n.retry }) } : {}),
          ...(n.budget ? { budget: Object.freeze({ ...n.budget, ...(n.budget.perTool ? { perTool: Object.freeze({ ...n.budget.perTool }) } : {}) }) } : {}),
        }) as NodeDef<I>,
    );
    const budget = Object.freeze({
      ...this.limits,
      ...(this.limits.perTool ? { perTool: Object.freeze({ ...this.limits.perTool }) } : {}),
      ...(this.limits.soft ? { soft: Object.freeze({ ...this.limits.soft }) } : {}),
    });
    const edges: EdgeDef<I>[] = this.edges.map((e, i) => Object.freeze({ ...e, back: backEdges.has(i) }));
    const byId = new Map(nodes.map((n) => [n.id, n]));
    const def: GraphDef<I> = {
      name: this.name,
      nodes: Object.freeze(nodes),
      edges: Object.freeze(edges),
      budget,
      budgetOverridable: this.overridable,
      entries: Object.freeze(entries),
      ...(this.inputSchema ? { inputSchema: this.inputSchema } : {}),
      version: versionHash(this.name, nodes, edges, this.limits, this.inputSchema),
      retention: Object.freeze({ ...this.keep }),
      migrations: Object.freeze({ ...this.migrations }),
      loops: Object.freeze(loops.map((l) => Object.freeze({ ...l, body: Object.freeze(l.body) }))),
      node: (id) => byId.get(id),
    };
    this.built = Object.freeze(def);
    return this.built;
  }
}

/** Start a graph. `opts.input` is a zod schema the run input must satisfy. */
export function graph<I = unknown>(name: string, opts: { input?: z.ZodType<I> } = {}): GraphBuilder<I> {
  return new GraphBuilder<I>(name, opts);
}

export function isGraphBuilder(x: unknown): x is GraphBuilder<unknown> {
  return x instanceof GraphBuilder;
}

/** Accept a builder or a built graph. */
export function toGraphDef<I>(g: GraphBuilder<I> | GraphDef<I>): GraphDef<I> {
  return g instanceof GraphBuilder ? g.build() : g;
}

function versionHash<I>(
  name: string,
  nodes: ReadonlyArray<NodeDef<I>>,
  edges: ReadonlyArray<EdgeDef<I>>,
  budget: Budget,
  input: z.ZodType<I> | undefined,
): string {
  const inputJson = schemaJson(input);
  const canonical = canonicalJson({
    name,
    nodes: nodes.map(({ args, approval, interrupt, ...n }) => ({
      ...n,
      args: args ? canonicalSource(args) : null,
      ...(approval ? { approval: { ...approval, schema: schemaJson(approval.schema) } } : {}),
      ...(interrupt ? { interrupt: { ...interrupt, schema: schemaJson(interrupt.schema) } } : {}),
    })),
    // A function's canonical source, not its text: the same graph built by tsx, esbuild or by hand has one version.
    edges: edges.map((e) => ({ from: e.from, to: e.to, when: e.when ? canonicalSource(e.when) : null })),
    budget,
    input: inputJson,
  });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** A zod schema as JSON Schema (for hashing and for offering it to people and models); null without one. */
export function schemaJson(schema: z.ZodType | undefined): unknown {
  if (!schema) return null;
  try {
    return z.toJSONSchema(schema);
  } catch {
    return 'unrepresentable';
  }
}

export { canonicalJson };
