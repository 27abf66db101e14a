import type { Bus } from '../bus/mod.js';
import { isAoError } from '@ao/graphs';
import type { AnyDraft, Envelope } from '../envelope/mod.js';
import { log } from '../log/mod.js';
import type { Recording } from '../replay/recording.js';
import type { Divergence, RunPatch, Store } from '../store/mod.js';
import { JournalAccept } from './journal-accept.js';
import { BATCH_WINDOW_TURNS, INTENTS, STAGE_FLUSH_MS, STAGE_FLUSH_TURNS, afterTurns, divergedError, keyOf } from './journal-types.js';
import type { ActorJournal, AppendExtra, JournalOptions, Prepared, Request, Staged } from './journal-types.js';

export type { ActorJournal, AppendExtra, CheckpointSource, JournalOptions, JournalReplay } from './journal-types.js';
export { BATCH_WINDOW_TURNS, STAGE_FLUSH_MS, STAGE_FLUSH_TURNS } from './journal-types.js';

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
 * the envelopes loaded at recovery; ids written by this process are remembered too. (How an
 * append is accepted, its ids, seqs and a replay's checks, is `JournalAccept`: journal-accept.ts.)
 */
export class RunJournal extends JournalAccept implements ActorJournal {
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
  /** Publication on the bus, after each commit, in commit order. */
  private published: Promise<unknown> = Promise.resolve();
  private staged: Staged | undefined;
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;
  private sealed = false;
  /** Called after every commit (fault injection in crash tests; metrics later). */
  static afterCommit: ((committed: number) => void) | undefined;

  constructor(
    private readonly store: Store,
    private readonly bus: Bus,
    runId: string,
    lastSeq: number,
    known: Iterable<Envelope> = [],
    o: JournalOptions = {},
  ) {
    super(runId, lastSeq, known, o);
  }

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

  /**
   * Append envelopes (with a run patch and a checkpoint). Appends are taken in order; those that
   * come while a commit is in flight go together in the next one (one commit for many actors of
   * the run: a swarm's branches that each reach a durability point at once commit once), except
   * in a replay, whose checks take one append at a time.
   */
  append(drafts: AnyDraft[], extra: AppendExtra = {}): Promise<Envelope[]> {
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
    return !this.queue.some(
      (q) => q.extra.checkpoint !== undefined || q.drafts.some((d) => senders.has(d.from) || d.type === 'run.finished' || d.type === 'run.parked'),
    );
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

  /** Take a batch of appends: stage them all, or commit them (with whatever is staged) in one commit. */
  private async take(reqs: Request[]): Promise<void> {
    const items: Prepared[] = this.ahead.splice(0);
    const seqBefore = items.length ? Math.min(...items.flatMap((p) => p.fresh.map((e) => e.seq)), this.nextSeq) : this.nextSeq;
    let ends = false;
    /** Appends after the run's end in this batch: refused once the end is committed (so `ended` reads true to whoever they fail). */
    const late: Request[] = [];
    for (const r of reqs) {
      if (ends) {
        late.push(r);
        continue;
      }
      try {
        if (this.closed) throw new Error(`the journal of run ${this.runId} is closed: this node no longer hosts it`);
        if (this.sealed) throw this.endedError();
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
          ...(this.o.original !== undefined ? { original: this.o.original } : {}),
        });
      } catch (e) {
        this.commitFailed(e, items, late, seqBefore);
        return;
      }
    }
    this.committed(items, events, ends, late);
  }

  /** What an append made after the run's end fails with. */
  private endedError(): Error {
    return new Error(`run ${this.runId} has ended: its log takes no more events`);
  }

  /**
   * A commit failed: fenced (another node holds the run now), or not known to be written. Every
   * append it carried, and every one taken or queued since, fails with it.
   */
  private commitFailed(e: unknown, items: readonly Prepared[], late: readonly Request[], seqBefore: number): void {
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
  }

  /** A commit is written: seal the log if it ended the run, deliver and publish its envelopes, answer its appends. */
  private committed(items: readonly Prepared[], events: readonly Envelope[], ends: boolean, late: readonly Request[]): void {
    this.committing = undefined;
    if (this.flushTimer && !this.staged) {
      clearTimeout(this.flushTimer);
      this.flushTimer = undefined;
    }
    // The run's last word: whatever an unwinding actor still tries to write is refused.
    if (ends) this.sealed = true;
    for (const r of late) r.reject(this.endedError());
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
