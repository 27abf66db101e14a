import { AoError } from '@ao/graphs';
import type { Budget, GraphDef } from '@ao/graphs';
import { runTraceContext } from '@ao/runtime';
import type { CheckpointRecord, Envelope, RunRecord, Store, StoredTurn, TraceContext } from '@ao/runtime';
import { foldLedger, isLedgerEvent } from '../budget/budget-actor.js';
import { newLedger } from '../budget/ledger.js';
import type { Ledger } from '../budget/ledger.js';
import { nodeLimitsOf } from '../budget/usage.js';
import { graphWithOverrides, loadRecording } from '../replay.js';
import { resumePlan } from '../resume-plan.js';
import type { ResumePlan } from '../resume-plan.js';
import { CheckpointStateSchema } from '../run-supervisor/checkpoint.js';
import type { CheckpointState } from '../run-supervisor/checkpoint.js';
import { SUPERVISOR_PATH } from '../run-supervisor/run-supervisor.js';
import { draft } from '../services.js';
import type { EngineContext } from './context.js';
import { endUnhosted, park } from './endings.js';
import type { Hosting } from './hosting.js';

/** What a batch of resumes read at once for one run (see `loadForResume`). */
export interface Loaded {
  checkpoint: CheckpointRecord | undefined;
  first: Envelope | undefined;
  /** The start messages of the live children its checkpoint names. */
  starts: Envelope[];
  /** The run's events after `after` (the plan's: its checkpoint's seq, or before the earliest start message or resume point of a live child). */
  after: number;
  known: Envelope[];
  /** Where its live agents go on from (see ../resume-plan.ts). */
  plan: ResumePlan;
}

/**
 * The reads of many resumes at once: each run's latest checkpoint and first envelope, the start
 * messages its checkpoint names, and its events since the earlier of the two (four reads for
 * the whole batch instead of four a run).
 */
export async function loadForResume(store: Store, runs: RunRecord[]): Promise<Map<string, Loaded>> {
  const ids = runs.map((r) => r.id);
  const [cps, firsts] = await Promise.all([store.latestCheckpoints(ids), store.firstEvents(ids)]);
  const startIds = new Map<string, string[]>();
  for (const [id, cp] of cps) {
    const live = (cp.state as { live?: Array<{ startId?: unknown }> } | null)?.live;
    startIds.set(id, Array.isArray(live) ? live.map((l) => l.startId).filter((x): x is string => typeof x === 'string') : []);
  }
  const starts = await startsOf(
    store,
    [...startIds].flatMap(([runId, list]) => list.map((id) => ({ runId, id, upTo: cps.get(runId)!.seq }))),
  );
  const byRun = new Map<string, Envelope[]>();
  for (const e of starts) byRun.set(e.runId, [...(byRun.get(e.runId) ?? []), e]);
  // The turn records since the live children started: agents among them go on from their resume points.
  const withStarts = ids.filter((id) => byRun.get(id)?.length);
  const records =
    withStarts.length && store.turnsSince
      ? await store.turnsSince(withStarts.map((id) => ({ runId: id, from: Math.min(...byRun.get(id)!.map((e) => e.seq)) })))
      : new Map<string, StoredTurn[]>();
  const plans = new Map(ids.map((id) => [id, resumePlan(id, cps.get(id)?.seq ?? 0, byRun.get(id) ?? [], records.get(id) ?? [])]));
  const ranges = ids.map((id) => ({ runId: id, after: plans.get(id)!.after }));
  const known = await store.eventsAfter(ranges, { bases: new Map([...plans.values()].flatMap((p) => [...p.bases])) });
  return new Map(
    ranges.map(({ runId: id, after }) => [
      id,
      { checkpoint: cps.get(id), first: firsts.get(id), starts: byRun.get(id) ?? [], after, known: known.get(id) ?? [], plan: plans.get(id)! },
    ]),
  );
}

/**
 * The start messages of live children (by run, in seq order). A live child started at or before
 * its checkpoint's step (`upTo`, the checkpoint's seq): only the log up to it is searched (ids are
 * not indexed, and a long conversation's log is long). One not found there is searched for whole.
 */
async function startsOf(store: Store, refs: Array<{ runId: string; id: string; upTo: number }>): Promise<Envelope[]> {
  if (!refs.length) return [];
  const found = await store.eventsById(refs);
  const missing = refs.filter((r) => !found.some((e) => e.runId === r.runId && e.id === r.id));
  if (!missing.length) return found;
  const all = [...found, ...(await store.eventsById(missing.map(({ runId, id }) => ({ runId, id }))))];
  return all.sort((a, b) => (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : a.seq - b.seq));
}

/** Resuming a run on this node: from its latest checkpoint (or its start), its ledger and its agents' resume points. */
export class Resumer {
  constructor(
    private readonly ctx: EngineContext,
    private readonly hosting: Hosting,
  ) {}

  async resume(run: RunRecord, loaded?: Loaded): Promise<void> {
    const { ctx } = this;
    // A replay that has written only its first event has not started: deliveries follow the original's order.
    const o = { freshReplay: run.replay !== null && run.lastSeq <= 1 };
    // Nothing logged yet (a run fresh from the queue): no first event, checkpoint or log to read.
    const blank = !loaded && run.lastSeq === 0 && run.replay === null;
    const first = loaded ? loaded.first : blank ? undefined : (await ctx.store.listEvents(run.id, { limit: 1 }))[0];
    const trace: TraceContext = first?.trace ?? runTraceContext(run.id, run.traceId);
    const registered = ctx.graphs.get(run.graph);
    if (!registered) return park(ctx, run, { code: 'AO_GRAPH_NOT_FOUND', message: `graph "${run.graph}" is not registered on node "${ctx.nodeId}"` });
    if (run.cancelRequested) return endUnhosted(ctx, run, 'cancelled', { code: 'AO_RUN_CANCELLED', message: 'cancelled while no node hosted it' });
    const def = run.replay ? graphWithOverrides(registered, run.replay.overrides, (t) => ctx.o.tools.has(t)) : registered;
    const cp = loaded ? loaded.checkpoint : blank ? undefined : await ctx.store.latestCheckpoint(run.id);
    const checked = this.restore(run, def, cp);
    if (checked.parked) return park(ctx, run, checked.parked);
    const { restored } = checked;
    // What a crash may have interrupted: the start messages of the live children and everything
    // logged since the earliest of them (their re-runs emit those again, under the same ids).
    const wanted = restored?.live.map((l) => l.startId) ?? [];
    // Read with the batch, unless a migration changed which children are live (read them again).
    const same = loaded && loaded.starts.length === wanted.length && loaded.starts.every((e) => wanted.includes(e.id));
    const starts = same
      ? loaded.starts
      : restored
        ? await startsOf(
            ctx.store,
            wanted.map((id) => ({ runId: run.id, id, upTo: cp!.seq })),
          )
        : [];
    // Agents among the live children that left resume points go on from there: not a replay's (its
    // actors read its original), nor a migrated run's (its agents run again on the new version).
    const migrated = run.graphVersion !== def.version;
    const plan = same && !migrated ? loaded.plan : migrated ? resumePlan(run.id, cp?.seq ?? 0, starts, []) : await this.planResume(run, cp?.seq ?? 0, starts);
    const from = plan.after;
    const known =
      loaded && loaded.after === from
        ? loaded.known
        : blank
          ? []
          : (await ctx.store.eventsAfter([{ runId: run.id, after: from }], { bases: plan.bases })).get(run.id)!;
    const recording = run.replay ? await loadRecording(ctx.store, run, run.replay, restored, { ordered: o.freshReplay === true }) : undefined;
    if (recording && !o.freshReplay) recording.advance(await ctx.store.listEvents(run.id, { limit: 10_000_000 }), restored?.step ?? 0);
    // A replay's children that were live at its step started in the original: their start messages are inherited.
    for (const l of restored?.live ?? []) {
      if (starts.some((e) => e.id === l.startId)) continue;
      const inherited = recording?.inherited(`${SUPERVISOR_PATH}/${l.name}/start`);
      if (inherited) starts.push({ ...inherited, id: l.startId, runId: run.id });
    }
    const ledger = restored ? await this.restoredLedger(run, def, restored, cp!.seq, known, plan) : undefined;
    // The agents' next requests continue their last ones (stored as what they add).
    if (plan.last.size) ctx.store.primeRequests?.(run.id, plan.last);
    const host = this.hosting.host(run, def, trace, {
      known,
      ...(ledger ? { ledger } : {}),
      ...(recording ? { recording } : {}),
      ...(restored ? { restored } : {}),
      ...(plan.agents.size ? { agents: plan.agents } : {}),
    });
    await this.hosting.start(host, async () => {
      if (run.graphVersion !== def.version) {
        await host.journal.append(
          [
            draft(
              { runId: run.id, trace },
              {
                from: SUPERVISOR_PATH,
                to: SUPERVISOR_PATH,
                type: 'run.migrated',
                payload: { from: run.graphVersion, to: def.version },
                causationId: null,
                key: `migrated/${def.version}`,
              },
            ),
          ],
          { patch: { graphVersion: def.version } },
        );
      }
      if (restored) host.resume(starts);
      else await host.begin(def, run.budget as Budget, trace);
    });
  }

  /**
   * The run's checkpoint state, migrated to this node's graph version and checked; or why the run
   * must wait for a person (its version changed and the graph declares no compatibility with it).
   */
  private restore(
    run: RunRecord,
    def: GraphDef<unknown>,
    cp: CheckpointRecord | undefined,
  ): { restored?: CheckpointState; parked?: { code: 'AO_GRAPH_VERSION_CHANGED'; message: string } } {
    if (!cp) {
      if (run.graphVersion !== def.version && !def.migrations[run.graphVersion]) {
        return { parked: { code: 'AO_GRAPH_VERSION_CHANGED', message: `run is pinned to version ${run.graphVersion}, this node has ${def.version}` } };
      }
      return {};
    }
    let state: unknown = cp.state;
    if (run.graphVersion !== def.version) {
      const migrate = def.migrations[run.graphVersion];
      if (!migrate) {
        return {
          parked: {
            code: 'AO_GRAPH_VERSION_CHANGED',
            message: `run is pinned to version ${run.graphVersion} of "${run.graph}", this node has ${def.version}, which declares no compatibility with it`,
          },
        };
      }
      state = migrate(state);
    }
    const parsed = CheckpointStateSchema.safeParse(state);
    if (!parsed.success) throw new AoError('AO_STORE_CORRUPT', `checkpoint ${cp.step} of run ${run.id}: ${parsed.error.issues[0]?.message}`);
    return { restored: parsed.data };
  }

  /** A run's resume plan, read now (a run resumed alone, or whose live children a migration changed); a replay's has no resume points. */
  private async planResume(run: RunRecord, cpSeq: number, starts: Envelope[]): Promise<ResumePlan> {
    const store = this.ctx.store;
    const records =
      run.replay === null && starts.length && store.turnsSince
        ? ((await store.turnsSince([{ runId: run.id, from: Math.min(...starts.map((e) => e.seq)) }])).get(run.id) ?? [])
        : [];
    return resumePlan(run.id, cpSeq, starts, records);
  }

  /**
   * The budget ledger as of the last committed event: the checkpoint's, or a later resume
   * point's, plus what came after it (or, for old checkpoints, a fold of the whole history).
   */
  private async restoredLedger(
    run: RunRecord,
    def: GraphDef<unknown>,
    restored: CheckpointState,
    cpSeq: number,
    known: Envelope[],
    plan: ResumePlan,
  ): Promise<Ledger> {
    const { wallClockSec: _clock, ...limits } = run.budget as Budget;
    const start = newLedger(limits, nodeLimitsOf(def));
    if (plan.ledger) {
      const { usage, ...at } = plan.ledger.state;
      return foldLedger(
        { ...start, ...at, usage },
        known.filter((e) => e.seq > plan.ledger!.seq && isLedgerEvent(e.type)),
      );
    }
    if (!restored.ledger) {
      const [budget, answers] = await Promise.all([
        this.ctx.store.listEventsOfType(run.id, 'budget.'),
        this.ctx.store.listEventsOfType(run.id, 'llm.response'),
      ]);
      return foldLedger(
        start,
        [...budget, ...answers].sort((a, b) => a.seq - b.seq),
      );
    }
    // The checkpoint's usage is its ledger's (checkpoints written before: what its nodes had reported).
    return foldLedger(
      { ...start, ...restored.ledger, usage: restored.usage },
      known.filter((e) => e.seq > cpSeq && isLedgerEvent(e.type)),
    );
  }
}
