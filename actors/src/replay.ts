import { AoError, parseBudget } from '@ao/graphs';
import type { Budget, GraphDef, NodeDef } from '@ao/graphs';
import { compareLogs, envelopeIdFor, Recording } from '@ao/runtime';
import type { Envelope, LogComparison, ReplayInfo, ReplayMode, ReplayOverrides, RunRecord, Store } from '@ao/runtime';
import { foldLedger } from './budget/budget-actor.js';
import { newLedger } from './budget/ledger.js';
import { nodeLimitsOf } from './budget/usage.js';
import { CheckpointStateSchema } from './run-supervisor/checkpoint.js';
import type { CheckpointState } from './run-supervisor/checkpoint.js';
import { SUPERVISOR_PATH } from './run-supervisor/run-supervisor.js';

export interface ReplayRequest {
  fromStep: number;
  mode?: ReplayMode;
  /** A fork: what changes from the step on. */
  overrides?: ReplayOverrides;
  /** The new run's id (a fork asked for by a run itself: the same request gives the same run). Default: a fresh one. */
  id?: string;
}

/** Longest chain of replays of replays followed when a log is assembled. */
const MAX_DEPTH = 32;
const ALL = 10_000_000;

/**
 * The graph a fork runs: the registered graph with the overridden nodes' instructions and tools.
 * An override naming a node or tool that does not exist is AO_REPLAY_INCOMPATIBLE.
 */
export function graphWithOverrides(def: GraphDef<unknown>, o: ReplayOverrides | null | undefined, hasTool: (name: string) => boolean): GraphDef<unknown> {
  const changes = o?.nodes;
  if (!changes || !Object.keys(changes).length) return def;
  for (const [id, c] of Object.entries(changes)) {
    if (!def.node(id))
      throw new AoError('AO_REPLAY_INCOMPATIBLE', `overrides.nodes names "${id}", which graph "${def.name}" does not have`, { field: `overrides.nodes.${id}` });
    for (const t of c.tools ?? []) {
      if (!hasTool(t))
        throw new AoError('AO_REPLAY_INCOMPATIBLE', `overrides.nodes.${id}.tools names "${t}", which is not registered`, {
          field: `overrides.nodes.${id}.tools`,
        });
    }
  }
  const nodes = def.nodes.map((n): NodeDef<unknown> => {
    const c = changes[n.id];
    if (!c) return n;
    return Object.freeze({
      ...n,
      ...(c.instructions !== undefined ? { instructions: c.instructions } : {}),
      ...(c.tools ? { tools: Object.freeze([...c.tools]) as string[] } : {}),
    });
  });
  const byId = new Map(nodes.map((n) => [n.id, n]));
  return Object.freeze({ ...def, nodes: Object.freeze(nodes), node: (id: string) => byId.get(id) });
}

/** A fork's budget: the original's, limit by limit replaced by the overrides (a person's decision: it may loosen). */
export function budgetWithOverrides(original: Budget, o: ReplayOverrides | null | undefined): Budget {
  if (!o?.budget) return original;
  try {
    return parseBudget({ ...original, ...o.budget });
  } catch (e) {
    throw new AoError('AO_VALIDATION', `overrides.budget: ${(e as Error).message}`, { field: 'overrides.budget' });
  }
}

/** The checkpoint a replay starts from, checked: it exists, has a step after it, and fits the graph registered now. */
export async function replayCheckpoint(
  store: Store,
  run: RunRecord,
  def: GraphDef<unknown>,
  fromStep: number,
): Promise<{ seq: number; node: string | null; createdAt: string; state: CheckpointState } | undefined> {
  if (fromStep === 0) return undefined;
  const cp = await store.getCheckpoint(run.id, fromStep);
  if (!cp) {
    const last = await store.latestCheckpoint(run.id);
    if (!last) throw new AoError('AO_CHECKPOINT_NOT_FOUND', `run ${run.id} has no checkpoints; replay it from step 0`, { field: 'fromStep' });
    if (fromStep > last.step) {
      const maxStep = CheckpointStateSchema.safeParse(last.state).data?.sched.finished ? last.step - 1 : last.step;
      throw new AoError('AO_REPLAY_STEP_OUT_OF_RANGE', `fromStep ${fromStep} is past the run's last step that can be replayed (${maxStep})`, {
        field: 'fromStep',
        details: { maxStep },
      });
    }
    throw new AoError('AO_CHECKPOINT_NOT_FOUND', `run ${run.id} has no checkpoint ${fromStep} (its retention may have removed it)`, { field: 'fromStep' });
  }
  const parsed = CheckpointStateSchema.safeParse(cp.state);
  if (!parsed.success) throw new AoError('AO_STORE_CORRUPT', `checkpoint ${cp.step} of run ${run.id}: ${parsed.error.issues[0]?.message}`);
  const state = parsed.data;
  if (state.sched.finished) {
    throw new AoError('AO_REPLAY_STEP_OUT_OF_RANGE', `step ${fromStep} ended the run: nothing happens after it; replay from ${fromStep - 1} or earlier`, {
      field: 'fromStep',
      details: { maxStep: fromStep - 1 },
    });
  }
  const missing = Object.keys(state.sched.nodes).find((n) => !def.node(n)) ?? state.live.find((l) => !def.node(l.node))?.node;
  if (missing || Object.keys(state.sched.nodes).length !== def.nodes.length || state.sched.edges.length !== def.edges.length) {
    throw new AoError(
      'AO_REPLAY_INCOMPATIBLE',
      `graph "${def.name}" as registered now ${missing ? `has no node "${missing}"` : 'has other nodes or edges'} than checkpoint ${fromStep} of run ${run.id}`,
      { field: 'fromStep' },
    );
  }
  return { seq: cp.seq, node: cp.node, createdAt: cp.createdAt, state };
}

/**
 * The state a replay starts in: the original's checkpoint, with its wall-clock deadline moved to
 * leave the replay the time the original had left at that step, and its budget ledger (folded
 * from the original's log for checkpoints that predate ledgers in checkpoints).
 */
export async function replayStartState(
  store: Store,
  run: RunRecord,
  def: GraphDef<unknown>,
  budget: Budget,
  cp: { seq: number; createdAt: string; state: CheckpointState },
  now: number,
  o: { asRecorded?: boolean } = {},
): Promise<CheckpointState> {
  let ledger = cp.state.ledger;
  if (!ledger) {
    const { wallClockSec: _c, ...limits } = budget;
    const history = (await store.listEventsOfType(run.id, 'budget.')).filter((e) => e.seq <= cp.seq);
    const l = foldLedger(newLedger(limits, nodeLimitsOf(def)), history);
    ledger = { used: l.used, byNode: l.byNode, reserved: l.reserved };
  }
  const left = cp.state.deadline !== undefined ? cp.state.deadline - Date.parse(cp.createdAt) : undefined;
  const deadline = budget.wallClockSec === undefined ? undefined : now + (left ?? budget.wallClockSec * 1000);
  // Its outputs are whole (read back); the references they came from name the original's log, not the replay's.
  const { deadline: _old, pausedAt: _paused, $refs: _refs, ...rest } = cp.state;
  // A recorded replay under the original's budget goes on as the original did: its budget waits
  // and soft limits (raised by earlier grants) are the original's, and their answers are served.
  if (o.asRecorded) return { ...rest, ledger, ...(deadline !== undefined ? { deadline } : {}) };
  // A fork asks again under its own budget: budget waits of the original are not carried over (the
  // held request is sent again by the actor that made it), and the soft limits are the fork's.
  const waits = Object.fromEntries(Object.entries(rest.sched.waits ?? {}).filter(([, w]) => w.kind !== 'budget'));
  const { soft: _soft, ...ledgerRest } = ledger;
  return {
    ...rest,
    sched: { ...rest.sched, waits },
    ledger: { ...ledgerRest, ...(budget.soft ? { soft: { ...budget.soft } } : {}) },
    ...(deadline !== undefined ? { deadline } : {}),
  };
}

/**
 * What a replay run knows of its original: the events of live children from their start up to the
 * checkpoint (inherited), and, for a recorded or lenient replay, everything after it (the
 * recording, with where each of the original's steps ended: its checkpoints' seqs). Loaded from
 * the original's log by seq range: the part before the earliest live start is never read, so the
 * cost does not grow with the steps before `fromStep`.
 */
export async function loadRecording(
  store: Store,
  replay: RunRecord,
  info: ReplayInfo,
  restored: CheckpointState | undefined,
  o: { ordered: boolean },
): Promise<Recording> {
  let from = info.baseSeq;
  if (restored?.live.length) {
    const ids = restored.live.map((l) => envelopeIdFor(info.of, `${SUPERVISOR_PATH}/${l.name}/start`));
    const starts = await store.getEvents(info.of, ids);
    from = Math.min(from, ...starts.map((e) => e.seq - 1));
  }
  const events = await store.listEvents(info.of, { after: from, ...(info.mode === 'live' ? { upTo: info.baseSeq } : {}), limit: ALL });
  // Where each of the original's steps ended: a recorded replay takes an answer at the step the original did.
  const steps = info.mode === 'live' ? [] : await store.listCheckpoints(info.of);
  return new Recording(info.of, replay.id, info.mode, info.baseSeq, events, { divergence: info.divergence, ordered: o.ordered, steps });
}

/**
 * A run's whole history as decisions: for a replay, its original's history up to the step it
 * replays from, then its own events (recursively for replays of replays).
 */
export async function effectiveLog(store: Store, run: RunRecord, upTo?: number, depth = 0): Promise<Envelope[]> {
  const own = await store.listEvents(run.id, { ...(upTo !== undefined ? { upTo } : {}), limit: ALL });
  if (!run.replay || depth >= MAX_DEPTH) return own;
  const original = await store.getRun(run.replay.of);
  return original ? [...(await effectiveLog(store, original, run.replay.baseSeq, depth + 1)), ...own] : own;
}

/** Compare two runs (an original and its replay or fork, or any two runs of a graph). */
export async function diffRuns(store: Store, a: RunRecord, b: RunRecord): Promise<LogComparison & { a: string; b: string }> {
  const ids = new Set<string>([a.id, b.id]);
  for (let r: RunRecord | undefined = a, d = 0; r?.replay && d < MAX_DEPTH; r = await store.getRun(r.replay.of), d++) ids.add(r.replay.of);
  for (let r: RunRecord | undefined = b, d = 0; r?.replay && d < MAX_DEPTH; r = await store.getRun(r.replay.of), d++) ids.add(r.replay.of);
  const [la, lb] = await Promise.all([effectiveLog(store, a), effectiveLog(store, b)]);
  return { a: a.id, b: b.id, ...compareLogs(la, lb, [...ids]) };
}
