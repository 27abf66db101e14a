import { AoError } from '@ao/graphs';
import { payloadField, payloadOf } from '../envelope/mod.js';
import type { AnyDraft, Envelope } from '../envelope/mod.js';
import type { Recording } from '../replay/recording.js';
import type { CheckpointWrite, Divergence, ReplayInfo, RunPatch, TurnExtras } from '../store/mod.js';

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
  append(drafts: AnyDraft[], extra?: AppendExtra): Promise<Envelope[]>;
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
export const INTENTS: ReadonlySet<string> = new Set(['llm.request', 'tool.call']);
/** Budget answers after which the announced call is not on its way (refused, or waiting for a person or for budget). */
export const SETTLED_ANNOUNCEMENTS: ReadonlySet<string> = new Set(['budget.refused', 'budget.waiting', 'budget.held', 'budget.release']);
export const keyOf = (payload: unknown): string | undefined => {
  const key = payloadField(payload, 'key');
  return typeof key === 'string' ? key : undefined;
};

/** Run `f` once the event loop has gone round `turns` more times (each turn runs what was queued before it). */
export function afterTurns(turns: number, f: () => void): void {
  if (turns <= 0) f();
  else setImmediate(() => afterTurns(turns - 1, f));
}

/** Run-row fields a staged append may change (the rest: status, leases, waits, signals... commit at once). */
export const STAGEABLE_PATCH: ReadonlySet<string> = new Set(['nodes', 'usage']);

/** An append waiting in the journal's queue. */
export interface Request {
  drafts: AnyDraft[];
  extra: AppendExtra;
  resolve: (envs: Envelope[]) => void;
  reject: (e: unknown) => void;
}

/** An append taken from the queue: its envelopes with their seqs, ready to stage or commit. */
export interface Prepared {
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
export interface Staged {
  events: Envelope[];
  patch: RunPatch | undefined;
  checkpoints: CheckpointWrite[];
  turns: Array<[string, TurnExtras]>;
}

/** How a journal is set up besides its run (the options of `RunJournal`'s constructor). */
export interface JournalOptions {
  replay?: JournalReplay;
  /** The run this one replays (recorded or live, or forks): the store may share its original's turn records. */
  original?: string;
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
}

/** What a strict append of a replay that diverged fails with: its supervisor ends the run with it. */
export function divergedError(d: Divergence): AoError {
  return new AoError('AO_REPLAY_DIVERGED', `the replay diverged from the original at step ${d.step} (${d.actor}): ${d.diff[0] ?? ''}`, {
    details: d,
    retryable: false,
  });
}

/** A recorded replay that diverged does not end as if it had reproduced the run: it fails, with the divergence. */
export function failedByDivergence(env: Envelope, patch: RunPatch | undefined, d: Divergence): { env: Envelope; patch: RunPatch } {
  const p = payloadOf(env, 'run.finished');
  const error = { code: 'AO_REPLAY_DIVERGED', message: `the replay diverged from the original at step ${d.step} (${d.actor}): ${d.diff[0] ?? ''}`, details: d };
  if (p?.error?.code === 'AO_REPLAY_DIVERGED') return { env, patch: patch ?? {} };
  return {
    env: { ...env, payload: { status: 'failed', error, ...(p?.usage ? { usage: p.usage } : {}) } },
    patch: { ...patch, status: 'failed', error, output: null },
  };
}
