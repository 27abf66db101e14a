import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { AoError, parseBudget, zodIssuePath } from '@ao/graphs';
import type { Budget, GraphDef } from '@ao/graphs';
import { log, meters, newTraceContext, runTraceContext, traceIdOf } from '@ao/runtime';
import type { NodeState, RunRecord } from '@ao/runtime';
import { release } from './context.js';
import type { EngineContext } from './context.js';
import type { Hosting } from './hosting.js';
import { QUEUE_OWNER } from './options.js';
import type { Resumer } from './resume.js';

export interface StartRunRequest {
  graph: string;
  input?: unknown;
  /** Overrides of the graph's budget, limit by limit. */
  budget?: Budget;
  /** Whose run it is (the gateway passes the API key's tenant); default `default`. */
  tenant?: string;
  /** Unique per tenant (`Idempotency-Key`), with the hash of the request that carried it. */
  idempotencyKey?: string;
  requestHash?: string;
}

/**
 * The graph's budget with a run's overrides: each limit may be tightened (or added); loosening one
 * is refused unless the graph was declared `overridable`.
 */
export function effectiveBudget(def: GraphDef<unknown>, override: Budget | undefined): Budget {
  if (!override) return def.budget;
  const o = parseBudget(override);
  const loosens = (field: string, mine: number | undefined, theirs: number | undefined) => {
    if (mine !== undefined && theirs !== undefined && theirs > mine && !def.budgetOverridable) {
      throw new AoError('AO_BUDGET_OVERRIDE_LOOSENS', `${field}: ${theirs} is above the graph's ${mine}; a run may only tighten it`, { field });
    }
  };
  for (const k of ['tokens', 'tools', 'wallClockSec', 'usd'] as const) loosens(`budget.${k}`, def.budget[k], o[k]);
  for (const [tool, cap] of Object.entries(o.perTool ?? {})) {
    if (!def.nodes.some((n) => n.tools.includes(tool))) {
      throw new AoError('AO_GRAPH_UNKNOWN_TOOL', `budget.perTool names "${tool}", which no node of "${def.name}" uses`, { field: `budget.perTool.${tool}` });
    }
    loosens(`budget.perTool.${tool}`, def.budget.perTool?.[tool], cap);
  }
  const perTool = { ...def.budget.perTool, ...o.perTool };
  return parseBudget({ ...def.budget, ...o, ...(Object.keys(perTool).length ? { perTool } : {}) });
}

/** The graph's input, checked against its schema (AO_VALIDATION with the field otherwise). */
function checkedInput(def: GraphDef<unknown>, given: unknown): unknown {
  if (!def.inputSchema) return given;
  const r = def.inputSchema.safeParse(given);
  if (!r.success) {
    const field = zodIssuePath(r.error.issues[0], 'input');
    throw new AoError('AO_VALIDATION', `${field}: ${r.error.issues[0]?.message}`, { ...(field ? { field } : {}) });
  }
  return r.data;
}

/** New runs: validated and stored (with the others submitted at once), then hosted here or queued for the cluster; and runs the queue hands this node. */
export class Intake {
  constructor(
    private readonly ctx: EngineContext,
    private readonly hosting: Hosting,
    private readonly resumer: Resumer,
  ) {}

  /** Validate and record a run, then start it; resolves once it is stored (status `pending`). */
  async startRun(req: StartRunRequest): Promise<RunRecord> {
    const { ctx } = this;
    if (ctx.closed) throw new AoError('AO_INTERNAL', 'engine is shut down');
    const def = ctx.graphs.get(req.graph);
    if (!def)
      throw new AoError(
        'AO_GRAPH_NOT_FOUND',
        `no graph named "${req.graph}"; known: ${ctx.graphs
          .list()
          .map((g) => g.name)
          .join(', ')}`,
        { field: 'graph' },
      );
    const input = checkedInput(def, req.input ?? {});
    const budget = effectiveBudget(def, req.budget);
    const id = randomUUID();
    // The root span id derives from the run id: a node taking the run from the queue rebuilds it.
    const trace = runTraceContext(id, traceIdOf(newTraceContext()));
    const nodes: Record<string, NodeState> = Object.fromEntries(def.nodes.map((n) => [n.id, { status: 'pending', iteration: 0, attempt: 0 }]));
    const queue = ctx.bus.queue;
    const run = await ctx.intake.create({
      id,
      graph: def.name,
      graphVersion: def.version,
      input,
      budget,
      nodes,
      traceId: traceIdOf(trace) ?? null,
      // In a cluster the run waits for a node to take it from the work queue (the claim loop takes
      // it only if the queue did not hand it out within a lease).
      owner: queue ? QUEUE_OWNER : ctx.nodeId,
      leaseMs: ctx.leaseMs,
      ...(req.tenant !== undefined ? { tenant: req.tenant } : {}),
      ...(req.idempotencyKey !== undefined ? { idempotencyKey: req.idempotencyKey, ...(req.requestHash ? { requestHash: req.requestHash } : {}) } : {}),
    });
    meters().runsStarted.add(1, { 'ao.graph': def.name });
    if (queue) {
      await queue.enqueue('runs', run.id, { runId: run.id, trace });
      return run;
    }
    const host = this.hosting.host(run, def, trace, {});
    // The run is stored (that is what the caller is told); its first step is written beside the
    // answer, not before it, and only once the submits that came with it are stored too, so a
    // burst of submits does not queue behind every run's writes. If that write fails the lease is
    // given up and the claim loop starts the run again (as after a crash before it).
    void ctx.intake
      .idle()
      .then(() => (host.stopped ? undefined : this.hosting.start(host, () => host.begin(def, budget, trace))))
      .catch((e: unknown) =>
        log.error('could not start the run; a claim will start it again', { component: 'engine', nodeId: ctx.nodeId, runId: run.id, err: e }),
      );
    return run;
  }

  /** A run handed out by the cluster's work queue: claim it (unless another node has) and host it. */
  async fromQueue(payload: unknown): Promise<void> {
    const { ctx } = this;
    const p = z.object({ runId: z.string().min(1).max(128) }).safeParse(payload);
    if (!p.success) throw new AoError('AO_VALIDATION', `a run-queue item must be {runId}: ${p.error.issues[0]?.message}`);
    // Shutting down: hand it back, another node takes it.
    if (ctx.closed) throw new AoError('AO_INTERNAL', `node ${ctx.nodeId} is shutting down`);
    if (ctx.hosts.has(p.data.runId)) return;
    const taking = (async () => {
      const run = await ctx.store.claimRun({ id: p.data.runId, owner: ctx.nodeId, leaseMs: ctx.leaseMs, from: QUEUE_OWNER });
      if (!run) return;
      // Shut down meanwhile: give it back at once rather than host it on a stopped actor system.
      if (ctx.closed) return void (await release(ctx, [run.id]));
      await this.resumer.resume(run);
    })();
    ctx.taking.add(taking);
    try {
      await taking;
    } finally {
      ctx.taking.delete(taking);
    }
  }
}
