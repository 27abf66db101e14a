import { payloadOf } from '@ao/runtime';
import type { Envelope } from '@ao/runtime';

/** The time a run's wall-clock budget has counted, as the run supervisor counts it. */
export interface WallClockUse {
  /** From the run's start to its end (or now), less the time it slept for a person on waits that stop the clock. */
  usedMs: number;
  /** The time it slept for a person that was not counted (so far, if it sleeps now). */
  pausedMs: number;
  /** It sleeps now on waits that stop the clock: `usedMs` stands still until it wakes. */
  paused: boolean;
}

/**
 * The wall clock of a run from its `run.*` envelopes: the run supervisor fixes the deadline at
 * `run.started` and moves it by the time the run slept whenever it wakes from a wait that stops
 * the clock (`run.resumed` with `wallClockPaused`, and its `pausedMs`); a sleep on a wait that
 * counts the wall clock (`countWallClock`) moves nothing. So the time used is the run's time less
 * those sleeps, and while it sleeps on such a wait the figure stands still. Undefined for a run
 * that has not started, and for a replay (`run.replayed`): it carries its original's deadline from
 * the checkpoint, which its own log does not say.
 */
export function wallClockUse(events: readonly Envelope[], nowMs: number): WallClockUse | undefined {
  let start: number | undefined;
  let end: number | undefined;
  let pausedMs = 0;
  let pausedSince: number | undefined;
  for (const e of events) {
    const at = Date.parse(e.time);
    switch (e.type) {
      case 'run.started':
        start ??= at;
        break;
      case 'run.replayed':
        return undefined;
      case 'run.waiting':
        // Checked where it entered: a payload of another shape (an older writer's) is passed over.
        if (payloadOf(e, 'run.waiting')?.waits.some((w) => w.countWallClock) === false) pausedSince ??= at;
        break;
      case 'run.resumed': {
        const p = payloadOf(e, 'run.resumed');
        if (p?.wallClockPaused) pausedMs += p.pausedMs;
        pausedSince = undefined;
        break;
      }
      case 'run.finished':
        end = at;
        break;
    }
  }
  if (start === undefined) return undefined;
  const to = end ?? nowMs;
  const asleep = pausedSince !== undefined ? Math.max(0, to - pausedSince) : 0;
  return { usedMs: Math.max(0, to - start - pausedMs - asleep), pausedMs: pausedMs + asleep, paused: pausedSince !== undefined && end === undefined };
}
