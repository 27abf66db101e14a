import type { Bus } from '../bus/mod.js';
import { AoError, isAoError } from '@ao/graphs';
import { assertStorable, envelopeIdFor, parseEnvelope, payloadOf } from '../envelope/mod.js';
import type { Envelope, EnvelopeDraft } from '../envelope/mod.js';
import { log } from '../log/mod.js';
import { isoNow } from '../clock/mod.js';
import type { Recording } from '../replay/recording.js';
import type { CheckpointWrite, Divergence, ReplayInfo, RunPatch, Store, TurnExtras } from '../store/mod.js';

/** A journal of a replay: what it inherits and checks against, and where divergences go. */
export interface JournalReplay {
  recording: Recording;
  info: ReplayInfo;
  /** Where the envelopes it inherits are delivered when an actor re-emits them (never on the bus: they are not in this run's log). */
  deliver(env: Envelope): void;
  /** Called once, after the commit that recorded the first divergence. */
  onDiverged(d: Divergence): void;
}

/** A checkpoint, or one made from the envelopes its commit writes (`make` is called in commit order). */
export type CheckpointSource = CheckpointWrite | { step: number; make: (fresh: readonly Envelope[]) => CheckpointWrite };

/**
 * What an actor sees of its run's journal: the host's own (`RunJournal`), or, for a node task run
 * on another node, one whose writes go through the host's (see `@ao/actors` tasks).
 */
export interface ActorJournal {
  readonly runId: string;
  /**
   * The seq of the last envelope the journal has taken (committed or staged): what an actor's
   * resume point reads the log after. Undefined where the journal does not give seqs (a node
   * task's, whose host does).
   */
  readonly lastSeq?: number;
  /** Nothing more can be written (the run ended, or this actor's host or task let it go). */
  readonly ended: boolean;
  readonly replay: Recording | undefined;
  idOf(dedupeKey: string): string;
  recorded(dedupeKey: string): Envelope | undefined;
  recording(dedupeKey: string): Envelope | undefined;
  remember(envs: readonly Envelope[]): void;
  diverged(d: Divergence): Promise<void>;
  append(drafts: EnvelopeDraft[], extra?: AppendExtra): Promise<Envelope[]>;
  flush(): Promise<void>;
}

/** What an append may carry besides its envelopes. */
export interface AppendExtra {
  patch?: RunPatch;
  checkpoint?: CheckpointSource;
  divergence?: Divergence;
  /**
   * May ride in the run's next commit (a message between the run's own actors: a node's start or
   * end, a budget decision, an effect's result). It is delivered to the host's actors at once and
   * written with the next durable append, or after `STAGE_FLUSH_MS` and `STAGE_FLUSH_TURNS` turns of
   * the event loop at the latest. A crash loses
   * it, and the actors re-derive it (same ids, same content) from the last commit. The journal
   * commits it at once anyway when it cannot be staged: a replay, an envelope for an actor on
   * another node (it travels over the bus, which carries committed envelopes only), or a patch
   * that changes more than the run's node states and usage.
   */
  stage?: boolean;
  /**
   * A strict (recorded) replay's step that goes on (one that ends the run is not): refused with
   * AO_REPLAY_DIVERGED when the replay has diverged, or diverges with it. Then nothing of the
   * append is written but a new divergence (its `replay.diverged` boundary and the run's
   * `replay.divergence`): a replay that no longer reproduces its original opens no wait, does not
   * go to sleep and starts nothing; its supervisor ends it instead. Checked when the append is
   * taken, so a divergence another actor's append records first is seen too.
   */
  strict?: boolean;
  /**
   * What an agent loop adds to the turn record of the append's model request (its first
   * `llm.request`; see the store's `turns.ts`). Dropped when that request is in the log already
   * (an actor running again after a crash): its record was written with it.
   */
  turn?: TurnExtras;
}

/** A staged envelope is committed after at most this long, when nothing durable comes first. */
export const STAGE_FLUSH_MS = 5;

/**
 * When the timer fires, the flush waits this many more turns of the event loop. Time alone
 * splits a step's commit on a busy process: the budget's grant and the intent it approves are a
 * few turns away (actor mailboxes are turns), and under load 5 ms pass before those turns run, so
 * the timer committed the staged request alone and the intent then made a commit of its own (29
 * commits for a 5-step run at 64 runs at once, against 12 at 32 turns). Counted in turns, the wait
 * gives the work already queued its chance first whatever the load; on an idle process 32 turns
 * take microseconds.
 */
export const STAGE_FLUSH_TURNS = 32;

/** The longest batch window before a durable commit, in turns of the event loop (see `RunJournal.gather`). */
export const BATCH_WINDOW_TURNS = 32;

/** The envelopes of an effect's intent, which a budget request announces (by its `key`). */
const INTENTS: ReadonlySet<string> = new Set(['llm.request', 'tool.call']);
/** Budget answers after which the announced call is not on its way (refused, or waiting for a person or for budget). */
const SETTLED_ANNOUNCEMENTS: ReadonlySet<string> = new Set(['budget.refused', 'budget.waiting', 'budget.held', 'budget.release']);
const keyOf = (payload: unknown): string | undefined => {
  const key = (payload as { key?: unknown } | null)?.key;
  return typeof key === 'string' ? key : undefined;
};

/** Run `f` once the event loop has gone round `turns` more times (each turn runs what was queued before it). */
function afterTurns(turns: number, f: () => void): void {
  if (turns <= 0) f();
  else setImmediate(() => afterTurns(turns - 1, f));
}

/** Run-row fields a staged append may change (the rest: status, leases, waits, signals... commit at once). */
const STAGEABLE_PATCH: ReadonlySet<string> = new Set(['nodes', 'usage']);

/** An append waiting in the journal's queue. */
interface Request {
  drafts: EnvelopeDraft[];
  extra: AppendExtra;
  resolve: (envs: Envelope[]) => void;
  reject: (e: unknown) => void;
}

/** An append taken from the queue: its envelopes with their seqs, ready to stage or commit. */
interface Prepared {
  req: Request;
  /** What the append resolves with, in order: new envelopes, ones already in the log (`again`), a replay's inherited ones (`local`). */
  out: Array<{ env: Envelope; local?: boolean; again?: boolean }>;
  fresh: Envelope[];
  patch?: RunPatch;
  checkpoint?: CheckpointWrite;
  /** The turn record extras of its fresh model request (by envelope id). */
  turn?: [string, TurnExtras];
  stage: boolean;
  /** The replay diverged with this append. */
  diverged?: Divergence;
  /** A strict append refused by that divergence: only the divergence is written, and the append fails once it is. */
  refused?: Divergence;
}

/** What the run's next commit carries besides the append that makes it. */
interface Staged {
  events: Envelope[];
  patch: RunPatch | undefined;
  checkpoints: CheckpointWrite[];
  turns: Array<[string, TurnExtras]>;
}

/**
 * The write path of one run: gives each new envelope the next gapless seq, commits the batch (with
 * an optional run patch and checkpoint) in one store transaction, and only after that commit
 * publishes the envelopes on the bus: the event log is the outbox.
 *
 * Durability points, not envelope points: an append marked `stage` is not committed on its own.
 * It is delivered to the host's own actors at once (`deliver`) and rides in the next durable
 * append (an effect's intent, the run's end), so a step commits where the outside world is
 * touched, not at every message. Nothing staged reaches the bus before its commit.
 *
 * Local first: with `deliver`, every envelope goes to the host's actors in process (after its
 * commit, or at once when staged), and the bus carries it, after the commit, to the others (node
 * tasks on other nodes, live streams), in the background: `flush` waits for that.
 *
 * Envelope ids derive from their dedupe keys, so an actor re-run after a crash emits ids the log
 * already holds. Those are not written again (no duplicate, no gap): the stored envelope is
 * delivered and published instead, which re-delivers what the crash interrupted. `known` holds
 * the envelopes loaded at recovery; ids written by this process are remembered too.
 */
export class RunJournal implements ActorJournal {
  private nextSeq: number;
  /** Appends waiting for the one in progress, and the loop that takes them. */
  private readonly queue: Request[] = [];
  private draining: Promise<void> | undefined;
  /**
   * A durable commit is in flight (and whether it ends the run). A staged append that comes
   * meanwhile is taken at once instead of behind it (see `append`); an append taken then that
   * cannot be staged waits in `ahead`, prepared, for the next commit.
   */
  private committing: { ends: boolean } | undefined;
  private ahead: Prepared[] = [];
  /** Appends made so far (the batch window watches it move). */
  private arrivals = 0;
  /** The batch window is open: a durable commit waits for the run's other actors (see `gather`). */
  private gathering = false;
  /**
   * Effects announced and not yet journaled: the keys of the run's budget requests whose call
   * (`llm.request`, `tool.call`) has not been taken, nor refused or held. While some are, another
   * actor's intent is on its way, and the batch window waits for it.
   */
  private readonly announced = new Set<string>();
  /** Publication on the bus, after each commit, in commit order. */
  private published: Promise<unknown> = Promise.resolve();
  /** Envelopes of the log loaded at recovery, by id. */
  private readonly known = new Map<string, Envelope>();
  /** Ids this process wrote or staged (ids only: payloads are not kept in memory). */
  private readonly written = new Set<string>();
  private staged: Staged | undefined;
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private sealed = false;
  /** Called after every commit (fault injection in crash tests; metrics later). */
  static afterCommit: ((committed: number) => void) | undefined;

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    readonly runId: string,
    lastSeq: number,
    known: Iterable<Envelope> = [],
    private readonly o: {
      replay?: JournalReplay;
      step?: number;
      /** Called with every append's new envelopes once they are accepted (staged or committed), in seq order. */
      onWrite?: (fresh: readonly Envelope[]) => void;
      owner?: string;
      /** Hand an envelope to the host's own actors (in process). Without it (a write for a run no one hosts), only the bus carries it. */
      deliver?: (env: Envelope) => void;
      /** Whether an actor path is one of the host's own actors (an envelope for any other is committed at once). */
      isLocal?: (path: Envelope['to']) => boolean;
      /** How long a staged envelope may wait for the next commit (default `STAGE_FLUSH_MS`). */
      flushMs?: number;
      /** How many more turns of the event loop the flush waits once its timer fires (default `STAGE_FLUSH_TURNS`). */
      flushTurns?: number;
      /** The largest payload an envelope may carry (bytes); the envelope's append fails past it (AO_PAYLOAD_TOO_LARGE). */
      maxPayloadBytes?: number;
      /**
       * A commit failed for another reason than a lost lease (the store is down, or its answer was
       * lost): the journal is closed, since what it staged and the seqs it gave are no longer
       * known to match the log, and whoever hosts the run gives it up to be resumed from the log.
       */
      onFailed?: (e: unknown) => void;
    } = {},
  ) {
    this.nextSeq = lastSeq + 1;
    for (const e of known) this.known.set(e.id, e);
    this.step = o.step ?? 0;
  }

  /** The supervisor's step of the last checkpoint written (where a divergence is reported). */
  private step: number;

  /** The run has ended (its last event is written) or this node stopped hosting it: nothing more can be written. */
  get ended(): boolean {
    return this.sealed || this.closed;
  }

  get replay(): Recording | undefined {
    return this.o.replay?.recording;
  }

  get lastSeq(): number {
    return this.nextSeq - 1;
  }

  /** Ids lately derived (a key's id is asked for by the actor that checks the log, then by the append). */
  private readonly ids = new Map<string, string>();

  idOf(dedupeKey: string): string {
    let id = this.ids.get(dedupeKey);
    if (id === undefined) {
      id = envelopeIdFor(this.runId, dedupeKey);
      // A bounded memo: a long run's keys are mostly asked for once or twice, close together.
      if (this.ids.size >= 1024) this.ids.clear();
      this.ids.set(dedupeKey, id);
    }
    return id;
  }

  /**
   * An envelope already in the log under this dedupe key (recorded before a crash), or, in a
   * replay, inherited from the original before the replay's step (as this run's envelope).
   */
  recorded(dedupeKey: string): Envelope | undefined {
    // A run with nothing in its log before this process (fresh, not a replay) has nothing to find.
    if (this.known.size === 0 && !this.o.replay) return undefined;
    const id = this.idOf(dedupeKey);
    const own = this.known.get(id);
    if (own) return own;
    const inherited = this.o.replay?.recording.inherited(dedupeKey);
    return inherited ? { ...inherited, id, runId: this.runId } : undefined;
  }

  /**
   * Keep envelopes this process wrote so `recorded` finds them (an answer to a question must be
   * readable by the actor that asked when it re-runs on this host).
   */
  remember(envs: readonly Envelope[]): void {
    for (const e of envs) this.known.set(e.id, e);
  }

  /** In a recorded (or lenient, not yet diverged) replay: the original's envelope for this emission after the step. */
  recording(dedupeKey: string): Envelope | undefined {
    return this.o.replay?.recording.recorded(dedupeKey);
  }

  /** Record a divergence found outside the journal's own check (e.g. a changed LLM request). */
  async diverged(d: Divergence): Promise<void> {
    if (this.o.replay) await this.append([], { divergence: d });
  }

  /**
   * Fence the journal: once this node stops hosting the run (it ended, the node shuts down or lost
   * the lease), an actor still unwinding can write nothing more, so it can never race the node
   * that takes the run over. What was staged and not committed is dropped (re-derived by whoever
   * resumes the run).
   */
  close(): void {
    this.closed = true;
    this.staged = undefined;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
  }

  /** Whether this append may ride in the next commit (see `AppendExtra.stage`). */
  private stageable(extra: AppendExtra, fresh: readonly Envelope[]): boolean {
    if (!extra.stage || this.o.replay || extra.divergence || !this.o.deliver) return false;
    if (extra.patch && Object.keys(extra.patch).some((k) => !STAGEABLE_PATCH.has(k))) return false;
    const isLocal = this.o.isLocal;
    return fresh.every((e) => e.type !== 'run.finished' && e.type !== 'run.parked' && (isLocal ? isLocal(e.to) : true));
  }

  /**
   * Append envelopes (with a run patch and a checkpoint). Appends are taken in order; those that
   * come while a commit is in flight go together in the next one (one commit for many actors of
   * the run: a swarm's branches that each reach a durability point at once commit once), except
   * in a replay, whose checks take one append at a time.
   */
  append(drafts: EnvelopeDraft[], extra: AppendExtra = {}): Promise<Envelope[]> {
    return new Promise<Envelope[]>((resolve, reject) => {
      const req: Request = { drafts, extra, resolve, reject };
      this.arrivals++;
      if (this.takesAtOnce(req)) this.stageDuring(req);
      else {
        this.queue.push(req);
        if (!this.draining) this.draining = this.drain();
      }
    });
  }

  /**
   * A staged append that comes while a durable commit is in flight is taken at once: it is given
   * its seqs and delivered now, and rides in the next commit, rather than waiting for the commit
   * in flight (on Postgres, a commit's I/O time). Its seqs may come before those of appends still
   * queued: no envelope depends on one that is queued (an actor sees an envelope only once it is
   * staged or committed), and one sender's appends keep their order (none of its appends is queued).
   */
  private takesAtOnce(req: Request): boolean {
    if (!(this.gathering || (this.committing && !this.committing.ends)) || !req.extra.stage || this.o.replay || this.closed || this.sealed) return false;
    // Nothing jumps ahead of the run's end, of an earlier append of its own sender, or of a
    // checkpoint: a checkpoint stands for the log up to its append's last envelope (recovery
    // redelivers what comes after it), so an envelope given a seq before it that its supervisor
    // had not taken would be skipped by a resume from it.
    const senders = new Set(req.drafts.map((d) => d.from));
    return !this.queue.some((q) => q.extra.checkpoint !== undefined || q.drafts.some((d) => senders.has(d.from) || d.type === 'run.finished' || d.type === 'run.parked'));
  }

  private stageDuring(req: Request): void {
    let p: Prepared;
    try {
      p = this.prepare(req);
    } catch (e) {
      req.reject(e);
      return;
    }
    if (p.stage) this.stage([p]);
    // Prepared (its seqs are given) but it must commit: it goes in the next commit, with what is queued.
    else {
      this.ahead.push(p);
      if (!this.draining) this.draining = this.drain();
    }
  }

  private async drain(): Promise<void> {
    while (this.queue.length || this.ahead.length) {
      if (!this.o.replay && this.queue.some((r) => !r.extra.stage) && this.othersAnnounced()) await this.gather();
      await this.take(this.o.replay ? this.queue.splice(0, 1) : this.queue.splice(0));
    }
    // No await between the check above and this line: an append cannot slip in between.
    this.draining = undefined;
  }

  /**
   * The batch window before a durable commit: the event loop goes round while the run's other
   * actors still append (a whole turn in which nothing came closes it: two turns at least), up
   * to `BATCH_WINDOW_TURNS`. Staged appends are taken at once meanwhile (`takesAtOnce`), so what
   * they start (a budget grant, then the intent it approves) can join the commit. A swarm's
   * branches then reach their durability points in a few commits instead of one each (on PGlite
   * a commit runs without yielding, and the budget actor decides one request a turn); a lone
   * actor pays two turns.
   */
  private async gather(): Promise<void> {
    this.gathering = true;
    try {
      // A turn is counted from one of the window's callbacks to the next, so that what was queued
      // after the window's first callback (in the same turn) has run before the window may close.
      let seen = this.arrivals;
      for (let turn = 0; turn < BATCH_WINDOW_TURNS && !this.ended && this.othersAnnounced(); turn++) {
        await new Promise<void>((r) => setImmediate(r));
        if (turn > 0 && this.arrivals === seen) break;
        seen = this.arrivals;
      }
    } finally {
      this.gathering = false;
    }
  }

  /**
   * Whether an effect the run announced (a budget request) has no call in the log or the queue
   * yet: then another actor's intent is a few turns away, and a commit made now would carry one
   * call where it could carry both. A lone actor's intent (a pipeline's, whatever the load)
   * commits at once.
   */
  private othersAnnounced(): boolean {
    if (!this.announced.size) return false;
    const queued = new Set<string>();
    for (const r of this.queue) for (const d of r.drafts) if (INTENTS.has(d.type)) queued.add(keyOf(d.payload) ?? '');
    for (const k of this.announced) if (!queued.has(k)) return true;
    return false;
  }

  /** Keep `announced` up to date with envelopes taken (staged or committed). */
  private track(env: Envelope): void {
    const key = keyOf(env.payload);
    if (key === undefined) return;
    if (env.type === 'budget.request') this.announced.add(key);
    else if (INTENTS.has(env.type) || SETTLED_ANNOUNCEMENTS.has(env.type)) this.announced.delete(key);
  }

  /** Take a batch of appends: stage them all, or commit them (with whatever is staged) in one commit. */
  private async take(reqs: Request[]): Promise<void> {
    const items: Prepared[] = this.ahead.splice(0);
    const seqBefore = items.length ? Math.min(...items.flatMap((p) => p.fresh.map((e) => e.seq)), this.nextSeq) : this.nextSeq;
    let ends = false;
    /** Appends after the run's end in this batch: refused once the end is committed (so `ended` reads true to whoever they fail). */
    const late: Request[] = [];
    const ended = () => new Error(`run ${this.runId} has ended: its log takes no more events`);
    for (const r of reqs) {
      if (ends) {
        late.push(r);
        continue;
      }
      try {
        if (this.closed) throw new Error(`the journal of run ${this.runId} is closed: this node no longer hosts it`);
        if (this.sealed) throw ended();
        const p = this.prepare(r);
        items.push(p);
        if (p.fresh.some((e) => e.type === 'run.finished' || e.type === 'run.parked')) ends = true;
      } catch (e) {
        r.reject(e);
      }
    }
    if (!items.length) return;
    if (items.every((p) => p.stage)) {
      this.stage(items);
      return;
    }
    const st = this.staged;
    // What is staged from here on (while this commit is in flight) rides in the next one.
    this.staged = undefined;
    this.committing = { ends };
    const events = [...(st?.events ?? []), ...items.flatMap((p) => p.fresh)];
    let patch: RunPatch | undefined = st?.patch;
    for (const p of items) if (p.patch) patch = { ...patch, ...p.patch };
    const checkpoints = [...(st?.checkpoints ?? []), ...items.flatMap((p) => (p.checkpoint ? [p.checkpoint] : []))];
    const turns = [...(st?.turns ?? []), ...items.flatMap((p) => (p.turn ? [p.turn] : []))];
    if (events.length || patch || checkpoints.length) {
      try {
        await this.store.commit({
          runId: this.runId,
          events,
          ...(patch ? { patch } : {}),
          ...(checkpoints.length ? { checkpoints } : {}),
          ...(this.o.owner !== undefined ? { owner: this.o.owner } : {}),
          ...(turns.length ? { turns: new Map(turns) } : {}),
        });
      } catch (e) {
        this.committing = undefined;
        // Fenced (another node holds the run now), or not known to be written: this journal
        // writes nothing more. What it staged is dropped, and the run is resumed from the log,
        // where the actors re-derive it (a retry here could write seqs the log may already hold).
        this.nextSeq = seqBefore;
        // Appends taken while it was in flight were given later seqs: they fail with it.
        const during = this.ahead.splice(0);
        for (const p of [...items, ...during]) {
          for (const env of p.fresh) this.written.delete(env.id);
          p.req.reject(e);
        }
        const lost = isAoError(e) && e.code === 'AO_LEASE_LOST';
        this.close();
        for (const r of [...late, ...this.queue.splice(0)]) r.reject(e);
        if (!lost) this.o.onFailed?.(e);
        return;
      }
    }
    this.committing = undefined;
    if (this.flushTimer && !this.staged) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    // The run's last word: whatever an unwinding actor still tries to write is refused.
    if (ends) this.sealed = true;
    for (const r of late) r.reject(ended());
    if (events.length) RunJournal.afterCommit?.(events.length);
    const replay = this.o.replay;
    for (const p of items) if (p.diverged) replay!.onDiverged(p.diverged);
    // The host's actors get these appends' envelopes now; the bus takes the whole commit after.
    for (const p of items) {
      for (const { env, local } of p.out) {
        if (local) replay!.deliver(env);
        else this.o.deliver?.(env);
      }
    }
    this.publish(events, false);
    const again = items.flatMap((p) => p.out.filter((x) => x.again).map((x) => x.env));
    if (again.length) this.publish(again, true);
    for (const p of items) {
      if (p.refused) p.req.reject(divergedError(p.refused));
      else p.req.resolve(p.out.map((o) => o.env));
    }
  }

  /** Stage prepared appends: delivered to the host's actors now, committed with the run's next commit (or by the flush timer). */
  private stage(items: readonly Prepared[]): void {
    const st = (this.staged ??= { events: [], patch: undefined, checkpoints: [], turns: [] });
    const again: Envelope[] = [];
    for (const p of items) {
      st.events.push(...p.fresh);
      if (p.patch) st.patch = { ...st.patch, ...p.patch };
      if (p.checkpoint) st.checkpoints.push(p.checkpoint);
      if (p.turn) st.turns.push(p.turn);
      for (const { env, again: seen } of p.out) {
        this.o.deliver!(env);
        if (seen) again.push(env);
      }
      p.req.resolve(p.out.map((o) => o.env));
    }
    // Already in the log (a re-run after a crash): observers may see it again at once.
    this.publish(again, true);
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        this.flushTimer = undefined;
        afterTurns(this.o.flushTurns ?? STAGE_FLUSH_TURNS, () => {
          if (this.staged && !this.ended) this.append([]).catch(() => undefined);
        });
      }, this.o.flushMs ?? STAGE_FLUSH_MS);
      this.flushTimer.unref?.();
    }
  }

  /**
   * An append's envelopes, given their seqs (checked against the recording in a replay), with its
   * patch and checkpoint: accepted into the journal (the host folds them) before they commit.
   */
  private prepare(req: Request): Prepared {
    const { drafts, extra } = req;
    const time = isoNow();
    const out: Prepared['out'] = [];
    const fresh: Envelope[] = [];
    const replay = this.o.replay;
    const hadDivergence = replay?.recording.divergence ?? null;
    const strict = extra.strict === true && replay?.recording.mode === 'recorded';
    if (strict && hadDivergence) throw divergedError(hadDivergence);
    if (replay && extra.divergence) replay.recording.diverge({ ...extra.divergence, step: extra.divergence.step < 0 ? this.step : extra.divergence.step });
    let patch = extra.patch;
    const step = extra.checkpoint?.step ?? this.step;
    for (const { dedupeKey, ...d } of drafts) {
      const id = this.idOf(dedupeKey);
      const seen = this.known.get(id);
      if (seen) {
        out.push({ env: seen, again: true });
        continue;
      }
      if (this.written.has(id) || fresh.some((e) => e.id === id)) continue; // emitted twice by this process: once is enough
      const inherited = replay?.recording.inherited(dedupeKey);
      if (inherited) {
        // Happened before the replay's step: not run again, not written again; its re-emission
        // is delivered to the actor that waits for it, as this run's envelope.
        out.push({ env: { ...inherited, id, runId: this.runId, causationId: d.causationId, trace: d.trace }, local: true });
        continue;
      }
      // Validated before it is stored: the log only ever holds envelopes the bus would accept.
      let env = parseEnvelope({ ...d, id, seq: this.nextSeq + fresh.length, time: d.time ?? time });
      if (replay) {
        const before = replay.recording.divergence;
        replay.recording.check(env, step);
        if (env.type === 'run.finished' || env.type === 'run.parked') replay.recording.checkEnd(step);
        const now = replay.recording.divergence;
        if (now && !before && strict) return this.refuse(req, now, time, d.trace);
        if (now && !before) {
          fresh.push(this.divergedEnvelope(now, env.seq, time, d.trace));
          env = { ...env, seq: env.seq + 1 };
          patch = { ...patch, replay: { ...replay.info, divergence: now } };
        }
        if (now && env.type === 'run.finished' && replay.recording.mode === 'recorded') {
          ({ env, patch } = failedByDivergence(env, patch, now));
        }
      }
      assertStorable(env, this.o.maxPayloadBytes);
      fresh.push(env);
      out.push({ env });
      if (!replay) this.track(env);
    }
    const divergence = replay?.recording.divergence ?? null;
    if (divergence && !hadDivergence && !fresh.some((e) => e.type === 'replay.diverged')) {
      // Found outside the check (see `diverged`): recorded on its own.
      fresh.push(this.divergedEnvelope(divergence, this.nextSeq + fresh.length, time, null));
      patch = { ...patch, replay: { ...replay!.info, divergence } };
    }
    const made = extra.checkpoint && 'make' in extra.checkpoint ? extra.checkpoint.make(fresh) : extra.checkpoint;
    // The checkpoint reflects the log up to this append's last envelope (a later one may share its commit).
    const checkpoint = made ? { ...made, seq: fresh.length ? fresh[fresh.length - 1]!.seq : this.nextSeq - 1 } : undefined;
    const stage = this.stageable({ ...extra, ...(patch ? { patch } : {}) }, fresh);
    const request = extra.turn ? fresh.find((e) => e.type === 'llm.request') : undefined;
    // Accepted: seqs move on, and the host folds the envelopes (a later append's checkpoint in the
    // same commit must see this one's budget decisions).
    if (checkpoint) this.step = checkpoint.step;
    this.nextSeq += fresh.length;
    for (const e of fresh) this.written.add(e.id);
    this.o.onWrite?.(fresh);
    return { req, out, fresh, ...(patch ? { patch } : {}), ...(checkpoint ? { checkpoint } : {}), ...(request ? { turn: [request.id, extra.turn!] as [string, TurnExtras] } : {}), stage, ...(divergence && !hadDivergence ? { diverged: divergence } : {}) };
  }

  /**
   * A strict append that diverged: written as its divergence alone (the boundary and the run's
   * `replay.divergence`), none of its envelopes, patch or checkpoint; it fails after the commit.
   */
  private refuse(req: Request, d: Divergence, time: string, trace: Envelope['trace']): Prepared {
    const boundary = this.divergedEnvelope(d, this.nextSeq, time, trace);
    this.nextSeq += 1;
    this.written.add(boundary.id);
    this.o.onWrite?.([boundary]);
    return { req, out: [], fresh: [boundary], patch: { replay: { ...this.o.replay!.info, divergence: d } }, stage: false, diverged: d, refused: d };
  }

  /** Publish committed envelopes on the bus, in order, off the actors' path (a failure is logged: the log has them). */
  private publish(envs: readonly Envelope[], again: boolean): void {
    if (!envs.length) return;
    this.published = this.published.then(async () => {
      if (this.bus.publishCommit) {
        // Validated when written or read back: sent as they are, in one message (a re-delivery under ids of its own).
        try {
          await this.bus.publishCommit(envs, again ? { again } : undefined);
        } catch (e) {
          if (!this.ended) log.error(`could not publish ${envs.length} envelope(s): ${(e as Error).message}`, { component: 'journal', runId: this.runId });
        }
        return;
      }
      for (const env of envs) {
        try {
          await this.bus.publish(env, again ? { again } : undefined);
        } catch (e) {
          if (!this.ended) log.error(`could not publish ${env.type} ${env.id}: ${(e as Error).message}`, { component: 'journal', runId: this.runId });
        }
      }
    });
  }

  /** The boundary a replay's divergence leaves in its log. */
  private divergedEnvelope(d: Divergence, seq: number, time: string, trace: Envelope['trace']): Envelope {
    return parseEnvelope({
      id: this.idOf('replay.diverged'),
      runId: this.runId,
      seq,
      from: 'supervisor',
      to: 'supervisor',
      type: 'replay.diverged',
      payload: d,
      causationId: null,
      trace,
      time,
    });
  }

  /** Commit what is staged, and wait until every append so far has committed and been published. */
  async flush(): Promise<void> {
    // An append still queued may stage more once it is taken: loop until nothing is queued or staged.
    while (this.draining || (this.staged && !this.ended)) {
      if (this.draining) await this.draining;
      else await this.append([]).catch(() => undefined);
    }
    await this.published;
  }
}

/** What a strict append of a replay that diverged fails with: its supervisor ends the run with it. */
function divergedError(d: Divergence): AoError {
  return new AoError('AO_REPLAY_DIVERGED', `the replay diverged from the original at step ${d.step} (${d.actor}): ${d.diff[0] ?? ''}`, { details: d, retryable: false });
}

/** A recorded replay that diverged does not end as if it had reproduced the run: it fails, with the divergence. */
function failedByDivergence(env: Envelope, patch: RunPatch | undefined, d: Divergence): { env: Envelope; patch: RunPatch } {
  const p = payloadOf(env, 'run.finished');
  const error = { code: 'AO_REPLAY_DIVERGED', message: `the replay diverged from the original at step ${d.step} (${d.actor}): ${d.diff[0] ?? ''}`, details: d };
  if (p?.error?.code === 'AO_REPLAY_DIVERGED') return { env, patch: patch ?? {} };
  return {
    env: { ...env, payload: { status: 'failed', error, ...(p?.usage ? { usage: p.usage } : {}) } },
    patch: { ...patch, status: 'failed', error, output: null },
  };
}
