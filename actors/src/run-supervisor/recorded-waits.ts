import type { ActorJournal, WaitInfo } from '@ao/runtime';
import type { Payload } from '../messages.js';
import type { SchedulerState, Step, WaitOutcome } from './scheduler.js';

/**
 * Waits in a recorded replay (issue 19). What the original read from the clock about a wait (when
 * it opened, when it times out), the answers it took and the times it slept are decisions the
 * replay cannot make again: they are served from the original's log, so a recorded replay of a
 * run that waited for a person reproduces its log from every step, and no person is asked again
 * (a lenient replay too, until it diverges). A live replay waits again, as a new run would.
 */

/** Served from the original: a recorded replay, or a lenient one before its divergence. */
const serving = (j: ActorJournal): boolean => j.replay?.serving === true;

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
  if (!serving(j) || !step.state.waits) return step;
  const opened = Object.values(step.state.waits).filter((w) => !before.waits?.[w.id]);
  if (!opened.length) return step;
  const slept = j.recording(`waiting/${stepNo}`)?.payload as { waits?: WaitInfo[] } | undefined;
  const recordedOf = (id: string) => (j.recording(`wait/${id}/opened`)?.payload as WaitInfo | undefined) ?? slept?.waits?.find((w) => w.id === id);
  const waits = { ...step.state.waits };
  for (const w of opened) waits[w.id] = timed(w, recordedOf(w.id));
  return {
    state: { ...step.state, waits },
    decisions: step.decisions.map((d) => (d.kind === 'wait' && waits[d.wait.id] ? { ...d, wait: waits[d.wait.id]! } : d)),
  };
}

/** The times of a question an agent asks (`wait.registered` under `key`), as the original registered them. */
export function recordedQuestionTimes(j: ActorJournal, key: string): Pick<WaitInfo, 'since' | 'timeoutAt'> | undefined {
  if (!serving(j)) return undefined;
  const p = j.recording(`${key}/wait`)?.payload as WaitInfo | undefined;
  return p ? { since: p.since, ...(p.timeoutAt !== undefined ? { timeoutAt: p.timeoutAt } : {}) } : undefined;
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
  const woke = j.recording(`resumed/${stepNo}`);
  if (!woke) return undefined;
  const p = woke.payload as Payload<'run.resumed'>;
  const resolved = open
    .map((id) => j.recording(`${id}/resolved`))
    .filter((e) => e !== undefined)
    .sort((a, b) => a.seq - b.seq)
    .map((e) => {
      const r = e.payload as Payload<'wait.resolved'>;
      return { wait: r.wait, outcome: r.outcome as WaitOutcome };
    });
  return { pausedMs: p.pausedMs, paused: p.wallClockPaused, resolved };
}
