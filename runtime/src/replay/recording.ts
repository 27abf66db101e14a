import { envelopeIdFor, payloadField } from '../envelope/mod.js';
import type { Envelope, EnvelopeType } from '../envelope/mod.js';
import type { Divergence, ReplayMode } from '../store/mod.js';
import { describeDivergence, emitterOf, gistOf, sameGist } from './describe.js';

/**
 * Envelope types whose arrival order an actor's decisions depend on (the supervisor's step order,
 * a swarm's join, the budget actor's ledger): a recorded replay delivers them in the original's
 * order. Budget answers are not among them: they go to the asking call, not to a mailbox.
 */
export const ORDERED_TYPES: ReadonlySet<string> = new Set([
  'node.completed',
  'node.failed',
  'budget.exceeded',
  'branch.completed',
  'branch.failed',
  'budget.request',
  'budget.settle',
  'budget.release',
]);

/**
 * Envelope types that record how the world was (a call waited for a provider's capacity), not a
 * decision: a recorded replay makes no live call and so has none. Neither recorded nor checked.
 */
export const CIRCUMSTANTIAL_TYPES: ReadonlySet<string> = new Set<EnvelopeType>(['llm.throttled']);

interface Cursor<T> {
  list: T[];
  i: number;
}

/** Where one of the original's supervisor steps ended in its log (its checkpoint), and what started it. */
export interface RecordedStepEnd {
  step: number;
  /** The seq of the last envelope the step wrote (its checkpoint's). */
  seq: number;
  /** The node the step was about (its checkpoint's `node`): null for a step a node did not start. */
  node: string | null;
}

/** One of the original's supervisor steps: what started it and what its supervisor wrote, in order. */
export interface RecordedStep {
  node: string | null;
  envelopes: Envelope[];
}

/** The budget actor's answers to a request: once one is in the log, the request was decided. */
const BUDGET_ANSWERS: ReadonlySet<string> = new Set(['budget.granted', 'budget.refused', 'budget.waiting', 'budget.held']);

/**
 * The ids of the budget requests at or before `baseSeq` that no answer at or before it decided:
 * the budget actor took them (in the original) before what comes after the step, and decided them
 * after it. A commit may give a request's answer a seq after a supervisor's checkpoint that came
 * later (appends of several actors gathered into one commit).
 */
function undecidedRequests(events: readonly Envelope[], baseSeq: number): Set<string> {
  const answered = new Set<string>();
  for (const e of events) {
    if (e.seq > baseSeq || !BUDGET_ANSWERS.has(e.type)) continue;
    const key = payloadField(e.payload, 'key');
    if (typeof key === 'string') answered.add(key);
  }
  const out = new Set<string>();
  for (const e of events) {
    if (e.seq > baseSeq || e.type !== 'budget.request') continue;
    const key = payloadField(e.payload, 'key');
    if (typeof key === 'string' && !answered.has(key)) out.add(e.id);
  }
  return out;
}

/** The index of the first envelope of `list` (in seq order) after `seq`. */
function firstAfter(list: readonly Envelope[], seq: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid]!.seq <= seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function push<T>(m: Map<string, Cursor<T>>, k: string, v: T): void {
  const c = m.get(k);
  if (c) c.list.push(v);
  else m.set(k, { list: [v], i: 0 });
}

/**
 * What a replay knows of the run it replays. The original's log splits at the checkpoint's seq
 * (`baseSeq`): before it, the replay's inheritance (what happened before the step: never run
 * again, read back when an actor re-running from its start message asks for it); after it, the
 * recording a `recorded` or `lenient` replay serves effect results from and checks every decision
 * against, actor by actor, in order.
 *
 * Envelope ids derive from (run id, dedupe key), so the original's envelope for an emission of the
 * replay is found by computing its id under the original's run id: no key needs to be stored.
 */
export class Recording {
  private readonly before = new Map<string, Envelope>();
  private readonly after = new Map<string, Envelope>();
  /** The original's decisions after the step, per emitting actor, in order. */
  private readonly expected = new Map<string, Cursor<Envelope>>();
  /** The original's order of arrival of ORDERED_TYPES envelopes, per recipient (original ids). */
  private readonly inbound = new Map<string, Cursor<string>>();
  /** Replay envelope id -> the original's envelope it reproduced. */
  private readonly reproduced = new Map<string, string>();
  /** The original's envelopes after the step, in seq order. */
  private readonly afterInOrder: Envelope[] = [];
  /** Where the original's steps after the replay's ended, by step (from its checkpoints). */
  private readonly stepEnds = new Map<number, RecordedStepEnd>();
  divergence: Divergence | null;
  /** Deliveries follow the original's order (off after a divergence, or in a replay resumed after a crash). */
  ordering: boolean;

  constructor(
    readonly of: string,
    readonly runId: string,
    readonly mode: ReplayMode,
    readonly baseSeq: number,
    events: Iterable<Envelope>,
    o: { divergence?: Divergence | null; ordered?: boolean; steps?: readonly RecordedStepEnd[] } = {},
  ) {
    this.divergence = o.divergence ?? null;
    for (const c of o.steps ?? []) if (c.seq >= baseSeq) this.stepEnds.set(c.step, c);
    const all = [...events];
    const undecided = mode === 'live' ? new Set<string>() : undecidedRequests(all, baseSeq);
    for (const e of all) {
      if (e.seq <= baseSeq) {
        this.before.set(e.id, e);
        // A request the budget actor took before the step but decided after it (its answer was
        // given a later seq than the step's checkpoint): its sender re-emits it in the replay, and
        // the budget actor must take it where it took it in the original, before what came after.
        if (undecided.has(e.id)) push(this.inbound, e.to, e.id);
        continue;
      }
      if (mode === 'live') continue;
      this.after.set(e.id, e);
      this.afterInOrder.push(e);
      if (CIRCUMSTANTIAL_TYPES.has(e.type)) continue;
      push(this.expected, emitterOf(e), e);
      if (ORDERED_TYPES.has(e.type)) push(this.inbound, e.to, e.id);
    }
    this.ordering = mode !== 'live' && (o.ordered ?? true) && !this.divergence;
  }

  private origId(dedupeKey: string): string {
    return envelopeIdFor(this.of, dedupeKey);
  }

  /** The original's envelope for this emission if it happened before the step. */
  inherited(dedupeKey: string): Envelope | undefined {
    const orig = this.before.get(this.origId(dedupeKey));
    // Its re-emission is delivered under this run's id: ordered like the original's (see mayDeliver).
    if (orig && ORDERED_TYPES.has(orig.type)) this.reproduced.set(envelopeIdFor(this.runId, dedupeKey), orig.id);
    return orig;
  }

  /** Recorded results are served (a recorded replay, or a lenient one before it diverged). */
  get serving(): boolean {
    return this.mode !== 'live' && !this.divergence;
  }

  /** The original's envelope for this emission after the step, while results are served. */
  recorded(dedupeKey: string): Envelope | undefined {
    return this.serving ? this.after.get(this.origId(dedupeKey)) : undefined;
  }

  /** Whether the original's checkpoints after the step are known (a run file may leave them out). */
  get knowsSteps(): boolean {
    return this.stepEnds.size > 0;
  }

  /**
   * The original's supervisor step `step` (one after the replay's), while results are served: the
   * node its checkpoint names and the envelopes `emitter` wrote in it (those between the previous
   * step's checkpoint and its own), in order. Undefined when its checkpoints are not known.
   */
  recordedStep(step: number, emitter: string): RecordedStep | undefined {
    if (!this.serving) return undefined;
    const end = this.stepEnds.get(step);
    const start = this.stepEnds.get(step - 1)?.seq ?? (step === 1 ? 0 : undefined);
    if (!end || start === undefined) return undefined;
    const envelopes: Envelope[] = [];
    for (let i = firstAfter(this.afterInOrder, start); i < this.afterInOrder.length && this.afterInOrder[i]!.seq <= end.seq; i++) {
      if (this.afterInOrder[i]!.from === emitter) envelopes.push(this.afterInOrder[i]!);
    }
    return { node: end.node, envelopes };
  }

  /**
   * Check one new emission of the replay against the original's next decision of the same actor.
   * Returns the divergence (and records it) when they differ; a match links the two envelopes.
   */
  check(e: { id: string; seq: number; type: string; from: string; to: string; payload: unknown }, step: number): Divergence | undefined {
    if (!this.serving || CIRCUMSTANTIAL_TYPES.has(e.type)) return undefined;
    const actor = emitterOf(e);
    const q = this.expected.get(actor);
    const next = q?.list[q.i];
    const ids = [this.of, this.runId];
    const actual = gistOf(e, ids);
    const expected = next ? gistOf(next, ids) : null;
    if (next && expected && sameGist(expected, actual)) {
      q!.i += 1;
      this.reproduced.set(e.id, next.id);
      return undefined;
    }
    return this.diverge({ step, actor, expected, actual, diff: describeDivergence(actor, expected, actual) });
  }

  /**
   * A replay resumed after a crash: its own events since the header were checked when they were
   * written; move the cursors past them so checking continues where it stopped.
   */
  advance(own: readonly Envelope[], step: number): void {
    for (const e of own) if (e.type !== 'run.replayed' && e.type !== 'replay.diverged') this.check(e, step);
  }

  /** At the replay's end: an actor of the original that still had decisions to make is a divergence. */
  checkEnd(step: number): Divergence | undefined {
    if (!this.serving) return undefined;
    for (const [actor, q] of this.expected) {
      const next = q.list[q.i];
      if (!next) continue;
      const expected = gistOf(next, [this.of, this.runId]);
      return this.diverge({ step, actor, expected, actual: null, diff: describeDivergence(actor, expected, null) });
    }
    return undefined;
  }

  /** Record the first divergence; recordings stop being served and deliveries stop being ordered. */
  diverge(d: Divergence): Divergence {
    if (!this.divergence) this.divergence = d;
    this.ordering = false;
    return this.divergence;
  }

  /**
   * Whether an envelope may be delivered now: one that reproduces an ORDERED_TYPES envelope of
   * the original waits until everything its recipient received before it in the original has
   * been delivered. Call `delivered` after delivering.
   */
  mayDeliver(e: Envelope): boolean {
    if (!this.ordering || !ORDERED_TYPES.has(e.type)) return true;
    const orig = this.reproduced.get(e.id);
    if (!orig) return true;
    const c = this.inbound.get(e.to);
    return !c || c.list[c.i] === orig || !c.list.includes(orig);
  }

  delivered(e: Envelope): void {
    const orig = this.reproduced.get(e.id);
    const c = orig ? this.inbound.get(e.to) : undefined;
    if (c && c.list[c.i] === orig) c.i += 1;
  }
}
