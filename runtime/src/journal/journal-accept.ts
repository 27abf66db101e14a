import { assertStorable, envelopeIdFor, parseEnvelope } from '../envelope/mod.js';
import type { Envelope } from '../envelope/mod.js';
import { isoNow } from '../clock/mod.js';
import type { Divergence, TurnExtras } from '../store/mod.js';
import { INTENTS, SETTLED_ANNOUNCEMENTS, STAGEABLE_PATCH, divergedError, failedByDivergence, keyOf } from './journal-types.js';
import type { AppendExtra, JournalOptions, Prepared, Request } from './journal-types.js';

/**
 * How a journal accepts an append (`RunJournal`, which extends it, is the rest: the queue, the
 * batch window, staging, commits and publication): its envelopes' ids and gapless seqs, what the
 * log holds already (`known`, `written`), a replay's checks and divergences, and the effects the
 * run announced.
 */
export abstract class JournalAccept {
  protected nextSeq: number;
  /**
   * Effects announced and not yet journaled: the keys of the run's budget requests whose call
   * (`llm.request`, `tool.call`) has not been taken, nor refused or held. While some are, another
   * actor's intent is on its way, and the batch window waits for it.
   */
  protected readonly announced = new Set<string>();
  /** Envelopes of the log loaded at recovery, by id. */
  protected readonly known = new Map<string, Envelope>();
  /** Ids this process wrote or staged (ids only: payloads are not kept in memory). */
  protected readonly written = new Set<string>();

  constructor(
    readonly runId: string,
    lastSeq: number,
    known: Iterable<Envelope>,
    protected readonly o: JournalOptions,
  ) {
    this.nextSeq = lastSeq + 1;
    for (const e of known) this.known.set(e.id, e);
    this.step = o.step ?? 0;
  }

  /** The supervisor's step of the last checkpoint written (where a divergence is reported). */
  protected step: number;

  /** Ids lately derived (a key's id is asked for by the actor that checks the log, then by the append). */
  protected readonly ids = new Map<string, string>();

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

  /** Whether this append may ride in the next commit (see `AppendExtra.stage`). */
  protected stageable(extra: AppendExtra, fresh: readonly Envelope[]): boolean {
    if (!extra.stage || this.o.replay || extra.divergence || !this.o.deliver) return false;
    if (extra.patch && Object.keys(extra.patch).some((k) => !STAGEABLE_PATCH.has(k))) return false;
    const isLocal = this.o.isLocal;
    return fresh.every((e) => e.type !== 'run.finished' && e.type !== 'run.parked' && (isLocal ? isLocal(e.to) : true));
  }

  /** Keep `announced` up to date with envelopes taken (staged or committed). */
  protected track(env: Envelope): void {
    const key = keyOf(env.payload);
    if (key === undefined) return;
    if (env.type === 'budget.request') this.announced.add(key);
    else if (INTENTS.has(env.type) || SETTLED_ANNOUNCEMENTS.has(env.type)) this.announced.delete(key);
  }

  /**
   * An append's envelopes, given their seqs (checked against the recording in a replay), with its
   * patch and checkpoint: accepted into the journal (the host folds them) before they commit.
   */
  protected prepare(req: Request): Prepared {
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
    return {
      req,
      out,
      fresh,
      ...(patch ? { patch } : {}),
      ...(checkpoint ? { checkpoint } : {}),
      ...(request ? { turn: [request.id, extra.turn!] as [string, TurnExtras] } : {}),
      stage,
      ...(divergence && !hadDivergence ? { diverged: divergence } : {}),
    };
  }

  /**
   * A strict append that diverged: written as its divergence alone (the boundary and the run's
   * `replay.divergence`), none of its envelopes, patch or checkpoint; it fails after the commit.
   */
  protected refuse(req: Request, d: Divergence, time: string, trace: Envelope['trace']): Prepared {
    const boundary = this.divergedEnvelope(d, this.nextSeq, time, trace);
    this.nextSeq += 1;
    this.written.add(boundary.id);
    this.o.onWrite?.([boundary]);
    return { req, out: [], fresh: [boundary], patch: { replay: { ...this.o.replay!.info, divergence: d } }, stage: false, diverged: d, refused: d };
  }

  /** The boundary a replay's divergence leaves in its log. */
  protected divergedEnvelope(d: Divergence, seq: number, time: string, trace: Envelope['trace']): Envelope {
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
}
