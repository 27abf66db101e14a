import { payloadOf } from '@ao/runtime';
import type { ActorJournal, Envelope, WaitInfo } from '@ao/runtime';
import type { SchedulerState, Step, WaitOutcome } from './scheduler.js';

/**
 * Waits in a recorded replay (issue 19). What the original read from the clock about a wait (when
 * it opened, when it times out), the answers it took and the times it slept are decisions the
 * replay cannot make again: they are served from the original's log, so a recorded replay of a
 * run that waited for a person reproduces its log from every step, and no person is asked again
 * (a lenient replay too, until it diverges). A live replay waits again, as a new run would.
 *
 * An answer the original took without sleeping is served at the step it took it in, which its
 * checkpoints tell (each step's checkpoint names the seq of its last envelope): one that came
 * early is taken in the step that opens its wait, one taken while the run was hosted (a person's
 * answer, or a timeout) makes a step of its own right after the step before it. A recording
 * without checkpoints (a run file that left them out) cannot place those: such a replay waits.
 */

/** Served from the original: a recorded replay, or a lenient one before its divergence. */
const serving = (j: ActorJournal): boolean => j.replay?.serving === true;

/** The supervisor's actor path (the emitter of its envelopes). */
const SUPERVISOR = 'supervisor';

/** The clock fields of a wait. */
const TIMES = ['since', 'timeoutAt'] as const;

/** A wait with the original's clock times, if the original recorded it. */
function timed(w: WaitInfo, recorded: WaitInfo | undefined): WaitInfo {
  if (!recorded) return w;
  const out: WaitInfo = { ...w };
  for (const k of TIMES) {
    if (recorded[k] !== undefined) (out as Record<string, unknown>)[k] = recorded[k];
    else delete (out as Record<string, unknown>)[k];
  }
  return out;
}

/**
 * The waits a supervisor step `stepNo` opens, with the times the original gave them: an approval's
 * from its `wait.opened`, any other's from the original's `run.waiting` of that step.
 */
export function withRecordedTimes(j: ActorJournal, before: SchedulerState, step: Step, stepNo: number): Step {
  if (!serving(j)) return step;
  // Opened in this step: still open, or answered in it too (an answer that came early).
  const opened = Object.values(step.state.waits ?? {}).filter((w) => !before.waits?.[w.id]);
  const openedAndAnswered = step.decisions.flatMap((d) => (d.kind === 'wait' && !before.waits?.[d.wait.id] && !step.state.waits?.[d.wait.id] ? [d.wait] : []));
  if (!opened.length && !openedAndAnswered.length) return step;
  const slept = payloadOf(j.recording(`waiting/${stepNo}`), 'run.waiting');
  const recordedOf = (id: string) => payloadOf(j.recording(`wait/${id}/opened`), 'wait.opened') ?? slept?.waits.find((w) => w.id === id);
  const waits = { ...step.state.waits };
  for (const w of opened) waits[w.id] = timed(w, recordedOf(w.id));
  const answered = new Map(openedAndAnswered.map((w) => [w.id, timed(w, recordedOf(w.id))]));
  const timedOf = (w: WaitInfo): WaitInfo | undefined => waits[w.id] ?? answered.get(w.id);
  return {
    state: step.state.waits ? { ...step.state, waits } : step.state,
    decisions: step.decisions.map((d) => (d.kind === 'wait' && timedOf(d.wait) ? { ...d, wait: timedOf(d.wait)! } : d)),
  };
}

/** The times of a question an agent asks (`wait.registered` under `key`), as the original registered them. */
export function recordedQuestionTimes(j: ActorJournal, key: string): Pick<WaitInfo, 'since' | 'timeoutAt'> | undefined {
  if (!serving(j)) return undefined;
  const p = payloadOf(j.recording(`${key}/wait`), 'wait.registered');
  return p ? { since: p.since, ...(p.timeoutAt !== undefined ? { timeoutAt: p.timeoutAt } : {}) } : undefined;
}

/** An answer (or timeout) the original took, as its `wait.resolved` says. */
export interface RecordedAnswer {
  wait: string;
  outcome: WaitOutcome;
}

/** The answers among a step's envelopes (a `wait.resolved` of a shape this code does not know is none). */
const answersIn = (envs: readonly Envelope[]): RecordedAnswer[] =>
  envs.flatMap((e) => {
    const r = payloadOf(e, 'wait.resolved');
    return r ? [{ wait: r.wait, outcome: r.outcome }] : [];
  });

/**
 * Whether a recorded replay places answers by the original's steps (it serves, and knows where the
 * original's steps ended): it then reads no answer of its own, and arms no wait timeout (the
 * original's timeouts are served at the steps it took them in, whatever the replay's clock says).
 */
export function servesAnswersBySteps(j: ActorJournal): boolean {
  return serving(j) && j.replay?.knowsSteps === true;
}

/**
 * The answers the original took in step `stepNo` among the `open` waits, in its order (an early
 * answer, taken in the step that opened its wait): what a recorded replay takes where a run reads
 * the answers already in. Empty when the original took none there, or its steps are not known.
 */
export function recordedAnswersAt(j: ActorJournal, stepNo: number, open: ReadonlySet<string>): RecordedAnswer[] {
  if (!servesAnswersBySteps(j)) return [];
  const step = j.replay!.recordedStep(stepNo, SUPERVISOR);
  return answersIn(step?.envelopes ?? []).filter((a) => open.has(a.wait));
}

/** A step the original took while hosted, made only of answers: a person's (`signals`) or a timeout's. */
export interface RecordedHostedStep {
  /** The node its checkpoint names (null for answers; the wait's node for a timeout). */
  node: string | null;
  /** The key its skips are written under, as the original's (`signals`, or `timeout/<wait>`). */
  causeKey: string;
  answers: RecordedAnswer[];
}

/**
 * In a recorded replay that just made step `stepNo - 1`: whether the original's next step was one it
 * took while hosted because an answer came in (a person's answer read at a poke, or a wait's timer)
 * rather than because a message did. Such a step begins with its `wait.resolved` (after the raise
 * of a granted budget), and its
 * checkpoint names no node (a person's answer) or the timeout's wait's node; a step that begins
 * with `run.resumed` is a wake (see `recordedWake`). So is a step that wrote nothing and names no
 * node (a new host taking the run over with waits open reads the answers in, and found none). The
 * replay makes it at once, before any message it holds.
 */
export function recordedHostedStep(j: ActorJournal, stepNo: number): RecordedHostedStep | undefined {
  if (!servesAnswersBySteps(j)) return undefined;
  const step = j.replay!.recordedStep(stepNo, SUPERVISOR);
  // A step that wrote nothing and names no node: a host taking the run over with waits open (a
  // restart, a handover), or a poke whose answers were all dropped. Only the step is made again.
  if (step && step.node === null && !step.envelopes.length) return { node: null, causeKey: 'resume', answers: [] };
  // A granted budget's raise is written just before its answer.
  const first = step?.envelopes.find((e) => e.type !== 'budget.raised');
  const firstAnswer = first && answersIn([first])[0];
  if (!step || !firstAnswer) return undefined;
  const timedOut = firstAnswer.outcome.kind === 'timeout';
  if (step.node !== null && !timedOut) return undefined;
  const answers = answersIn(step.envelopes);
  return { node: step.node, causeKey: step.node === null ? 'signals' : `timeout/${firstAnswer.wait}`, answers };
}

/** How the original woke at a step after sleeping: how long it slept and the waits it resolved then, in its order. */
export interface RecordedWake {
  pausedMs: number;
  paused: boolean;
  resolved: Array<{ wait: string; outcome: WaitOutcome }>;
}

/**
 * In a recorded replay about to sleep (or restored asleep) with `open` waits: how the original
 * woke at step `stepNo`, if it did (its `run.resumed` there), with the answers and timeouts it
 * took. Undefined when the original did not wake there: the replay then does what it would do.
 */
export function recordedWake(j: ActorJournal, stepNo: number, open: readonly string[]): RecordedWake | undefined {
  if (!serving(j)) return undefined;
  const p = payloadOf(j.recording(`resumed/${stepNo}`), 'run.resumed');
  if (!p) return undefined;
  // Where the original's steps are known, the answers of that step only (one taken later while hosted is served at its own step).
  if (servesAnswersBySteps(j)) return { pausedMs: p.pausedMs, paused: p.wallClockPaused, resolved: recordedAnswersAt(j, stepNo, new Set(open)) };
  const resolved = answersIn(
    open
      .map((id) => j.recording(`${id}/resolved`))
      .filter((e) => e !== undefined)
      .sort((a, b) => a.seq - b.seq),
  );
  return { pausedMs: p.pausedMs, paused: p.wallClockPaused, resolved };
}

/** The lookups a reduction makes into its original's log (all empty outside a serving replay). */
export interface RecordedReads {
  /** See `servesAnswersBySteps`. */
  servesBySteps: boolean;
  answersAt(stepNo: number, open: ReadonlySet<string>): RecordedAnswer[];
  withTimes(before: SchedulerState, step: Step, stepNo: number): Step;
  wake(stepNo: number, open: readonly string[]): RecordedWake | undefined;
  hostedStep(stepNo: number): RecordedHostedStep | undefined;
}

/** A run that serves nothing (not a replay): what the reducer's tests use. */
export const NOTHING_RECORDED: RecordedReads = {
  servesBySteps: false,
  answersAt: () => [],
  withTimes: (_before, step) => step,
  wake: () => undefined,
  hostedStep: () => undefined,
};

/** The lookups into a journal's recording, as they stand now (a lenient replay stops serving when it diverges). */
export function recordedReads(j: ActorJournal): RecordedReads {
  return {
    servesBySteps: servesAnswersBySteps(j),
    answersAt: (stepNo, open) => recordedAnswersAt(j, stepNo, open),
    withTimes: (before, step, stepNo) => withRecordedTimes(j, before, step, stepNo),
    wake: (stepNo, open) => recordedWake(j, stepNo, open),
    hostedStep: (stepNo) => recordedHostedStep(j, stepNo),
  };
}
