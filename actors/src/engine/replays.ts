import { randomUUID } from 'node:crypto';
import { AoError, zodIssuePath } from '@ao/graphs';
import type { Budget, GraphDef } from '@ao/graphs';
import { envelopeIdFor, isoNow, meters, newTraceContext, RunJournal, traceIdOf } from '@ao/runtime';
import type { NodeState, ReplayInfo, RunFile, RunRecord } from '@ao/runtime';
import { budgetWithOverrides, diffRuns, graphWithOverrides, replayCheckpoint, replayStartState } from '../replay.js';
import type { ReplayRequest } from '../replay.js';
import { SUPERVISOR_PATH } from '../run-supervisor/run-supervisor.js';
import { draft } from '../services.js';
import type { EngineContext } from './context.js';
import { QUEUE_OWNER } from './options.js';
import type { Resumer } from './resume.js';

/** Replays and forks of stored runs, the diff of two runs, and run files renamed for import. */
export class Replays {
  constructor(
    private readonly ctx: EngineContext,
    private readonly resumer: Resumer,
  ) {}

  /**
   * Replay a run from checkpoint `fromStep` as a new run linked to it: restored as it was at that
   * step (supervisor state, live children with their start messages, budget ledger), nothing
   * before the step runs again. `live` makes calls after it for real; `recorded` serves the
   * original's results and fails at the first decision that differs; `lenient` serves them until
   * the first difference, then goes on live. `overrides` make it a fork.
   */
  async replay(id: string, req: ReplayRequest): Promise<RunRecord> {
    const { ctx } = this;
    if (ctx.closed) throw new AoError('AO_INTERNAL', 'engine is shut down');
    const original = await ctx.store.getRun(id);
    if (!original) throw new AoError('AO_RUN_NOT_FOUND', `no run ${id}`, { field: 'id' });
    const registered = ctx.graphs.get(original.graph);
    if (!registered) throw new AoError('AO_GRAPH_NOT_FOUND', `graph "${original.graph}" of run ${id} is not registered`, { field: 'graph' });
    const overrides = req.overrides && Object.keys(req.overrides).length ? req.overrides : null;
    const def = graphWithOverrides(registered, overrides, (t) => ctx.o.tools.has(t));
    const cp = await replayCheckpoint(ctx.store, original, def, req.fromStep);
    const input = overrides && 'input' in overrides ? replayInput(def, overrides.input) : original.input;
    const budget = budgetWithOverrides(original.budget as Budget, overrides);
    const info: ReplayInfo = {
      of: id,
      fromStep: req.fromStep,
      mode: req.mode ?? 'live',
      overrides,
      baseSeq: cp?.seq ?? 0,
      originalVersion: original.graphVersion,
      divergence: null,
    };
    const trace = newTraceContext();
    const run = await ctx.store.createRun({
      id: req.id ?? randomUUID(),
      graph: def.name,
      graphVersion: def.version,
      input,
      budget,
      nodes: cp ? cp.state.sched.nodes : Object.fromEntries(def.nodes.map((n) => [n.id, { status: 'pending', iteration: 0, attempt: 0 } as NodeState])),
      traceId: traceIdOf(trace) ?? null,
      owner: ctx.bus.queue ? QUEUE_OWNER : ctx.nodeId,
      leaseMs: ctx.leaseMs,
      replay: info,
    });
    const { divergence: _d, ...header } = info;
    const journal = new RunJournal(ctx.store, ctx.bus, run.id, run.lastSeq);
    // Served from the original (recorded, or lenient until it diverges) under its budget: it goes on as the original did.
    const asRecorded = info.mode !== 'live' && !overrides?.budget;
    const start = cp ? await replayStartState(ctx.store, original, def, budget, cp, ctx.clock.now(), { asRecorded }) : undefined;
    await journal.append(
      [
        draft(
          { runId: run.id, trace },
          { from: SUPERVISOR_PATH, to: SUPERVISOR_PATH, type: 'run.replayed', payload: header, causationId: null, key: 'run.replayed' },
        ),
      ],
      {
        ...(start
          ? {
              // The replay's own copy of the checkpoint it starts from: a crash before its next step resumes from it.
              checkpoint: {
                step: req.fromStep,
                node: cp!.node,
                graphVersion: def.version,
                state: { ...start, live: start.live.map((l) => ({ ...l, startId: journal.idOf(`${SUPERVISOR_PATH}/${l.name}/start`) })) },
              },
              patch: { status: 'running', startedAt: isoNow(ctx.clock), usage: start.usage },
            }
          : {}),
      },
    );
    await journal.flush(); // published before its host writes after it
    meters().runsStarted.add(1, { 'ao.graph': def.name, replay: true });
    if (ctx.bus.queue) await ctx.bus.queue.enqueue('runs', run.id, { runId: run.id });
    else await this.resumer.resume((await ctx.store.getRun(run.id))!);
    return (await ctx.store.getRun(run.id))!;
  }

  /** A budget decision's fork of run `id` at `step` (the same fork if it was made before a crash): its id. */
  async fork(id: string, step: number, budget: Record<string, unknown>, key: string): Promise<string> {
    const forkId = envelopeIdFor(id, key);
    if (await this.ctx.store.getRun(forkId)) return forkId; // made before a crash: the same fork
    return (await this.replay(id, { fromStep: step, mode: 'live', overrides: { budget }, id: forkId })).id;
  }

  /** Where two runs first differ (actor by actor) and their per-node output differences. */
  async diff(a: string, b: string): Promise<Awaited<ReturnType<typeof diffRuns>>> {
    const [ra, rb] = await Promise.all([this.ctx.store.getRun(a), this.ctx.store.getRun(b)]);
    if (!ra) throw new AoError('AO_RUN_NOT_FOUND', `no run ${a}`, { field: 'a' });
    if (!rb) throw new AoError('AO_RUN_NOT_FOUND', `no run ${b}`, { field: 'b' });
    return diffRuns(this.ctx.store, ra, rb);
  }

  /**
   * A run file under a new id that still replays recorded (`ao import FILE --as ID`): see
   * `Verifier.rename`, here against this engine's graphs, tools and model profiles (whose token
   * counts the budget's reservations used; no model is called).
   */
  async renamedRun(file: RunFile, newId: string): Promise<RunFile> {
    const { Verifier } = await import('../verify/verifier.js');
    const verifier = new Verifier({ graphs: this.ctx.graphs.list(), tools: this.ctx.o.tools, llm: this.ctx.o.llm });
    try {
      return await verifier.rename(file, newId);
    } finally {
      await verifier.close();
    }
  }
}

/** A fork's own input, checked against the graph's schema (AO_VALIDATION under `overrides.input`). */
function replayInput(def: GraphDef<unknown>, given: unknown): unknown {
  if (!def.inputSchema) return given;
  const r = def.inputSchema.safeParse(given);
  if (!r.success)
    throw new AoError('AO_VALIDATION', `overrides.input: ${r.error.issues[0]?.message}`, {
      field: zodIssuePath(r.error.issues[0], 'overrides.input') ?? 'overrides.input',
    });
  return r.data;
}
