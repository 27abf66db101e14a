import { performance } from 'node:perf_hooks';
import type { Engine } from '@ao/actors';
import { summarize } from './measure.js';
import type { Summary } from './measure.js';
import { benchLoopName, REPLAY_LOOPS } from './workload.js';

export interface ReplayStartResult {
  /** One entry per loop size: the original's length and the replay timings from its last step. */
  runs: Array<{
    steps: number;
    fromStep: number;
    originalMs: number;
    /** `engine.replay()` until it returns: checkpoint read, recording loaded, replay row and header written, run hosted. */
    live: { startMs: Summary; firstEventMs: Summary; totalMs: Summary };
    recorded: { startMs: Summary; firstEventMs: Summary; totalMs: Summary };
  }>;
}

const REPS = 7;

/**
 * How long a replay takes to start, for a short and a long run replayed from their last step:
 * the cost must not grow with the steps before `fromStep` (the replay reads one checkpoint and
 * the events of the actors live at it, never the run's history).
 */
export async function replayStart(engine: Engine, timeoutMs: number): Promise<ReplayStartResult> {
  const runs: ReplayStartResult['runs'] = [];
  for (const iterations of REPLAY_LOOPS) {
    const t0 = performance.now();
    const original = await engine.waitForRun((await engine.startRun({ graph: benchLoopName(iterations) })).id, timeoutMs * 10);
    const originalMs = performance.now() - t0;
    if (original.status !== 'succeeded') throw new Error(`loop run ${original.id} ended ${original.status}`);
    const cps = await engine.queries.listCheckpoints(original.id);
    const fromStep = cps.at(-1)!.step - 1;
    const timings = async (mode: 'live' | 'recorded') => {
      const start: number[] = [];
      const first: number[] = [];
      const total: number[] = [];
      for (let i = 0; i < REPS; i++) {
        const wall = Date.now();
        const t = performance.now();
        const r = await engine.replay(original.id, { fromStep, mode });
        start.push(performance.now() - t);
        const done = await engine.waitForRun(r.id, timeoutMs);
        total.push(performance.now() - t);
        if (done.status !== 'succeeded') throw new Error(`replay ${r.id} of ${original.id} ended ${done.status}`);
        const [, next] = await engine.listEvents(r.id, { limit: 2 });
        first.push(next ? Date.parse(next.time) - wall : Number.NaN);
      }
      return { startMs: summarize(start), firstEventMs: summarize(first), totalMs: summarize(total) };
    };
    runs.push({ steps: cps.length, fromStep, originalMs, live: await timings('live'), recorded: await timings('recorded') });
  }
  return { runs };
}
