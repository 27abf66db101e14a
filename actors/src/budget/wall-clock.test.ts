import { describe, expect, it } from 'vitest';
import type { Envelope } from '@ao/runtime';
import { wallClockUse } from './wall-clock.js';

const T0 = Date.parse('2026-05-01T12:00:00.000Z');
const at = (ms: number) => new Date(T0 + ms).toISOString();
let seq = 0;
const env = (type: string, ms: number, payload: unknown = {}): Envelope =>
  ({ seq: ++seq, type, time: at(ms), from: 'supervisor', to: 'supervisor', payload }) as unknown as Envelope;
const wait = (countWallClock: boolean) => ({
  id: 'approval/refund/1',
  node: 'refund',
  kind: 'approval',
  prompt: 'Go?',
  schema: {},
  since: at(0),
  countWallClock,
});

describe('the wall clock a run has used, as its budget counts it', () => {
  it('counts a running run from its start to now, and a finished one to its end', () => {
    expect(wallClockUse([env('run.started', 0)], T0 + 1500)).toEqual({ usedMs: 1500, pausedMs: 0, paused: false });
    expect(wallClockUse([env('run.started', 0), env('run.finished', 2000, { status: 'succeeded' })], T0 + 60_000)).toEqual({
      usedMs: 2000,
      pausedMs: 0,
      paused: false,
    });
  });

  it('leaves out a sleep for a person that stops the clock: standing still while it sleeps, less its pausedMs after', () => {
    const asleep = [env('run.started', 0), env('run.waiting', 300, { waits: [wait(false)] })];
    expect(wallClockUse(asleep, T0 + 70_000)).toEqual({ usedMs: 300, pausedMs: 69_700, paused: true });
    const woke = [...asleep, env('run.resumed', 70_300, { pausedMs: 70_000, wallClockPaused: true }), env('run.finished', 70_700, { status: 'succeeded' })];
    // The triage-with-approval case of issue 25: 70.7 s of run, 0.7 s of it on the budget's clock.
    expect(wallClockUse(woke, T0 + 90_000)).toEqual({ usedMs: 700, pausedMs: 70_000, paused: false });
  });

  it('counts a sleep on a wait that counts the wall clock', () => {
    const asleep = [env('run.started', 0), env('run.waiting', 300, { waits: [wait(true)] })];
    expect(wallClockUse(asleep, T0 + 5000)).toEqual({ usedMs: 5000, pausedMs: 0, paused: false });
    const woke = [...asleep, env('run.resumed', 5000, { pausedMs: 4700, wallClockPaused: false }), env('run.finished', 5200, { status: 'succeeded' })];
    expect(wallClockUse(woke, T0 + 9000)).toEqual({ usedMs: 5200, pausedMs: 0, paused: false });
  });

  it('does not count the sleep of a run that ended asleep (cancelled, or its wait timed out)', () => {
    const ended = [env('run.started', 0), env('run.waiting', 300, { waits: [wait(false)] }), env('run.finished', 10_300, { status: 'cancelled' })];
    expect(wallClockUse(ended, T0 + 20_000)).toEqual({ usedMs: 300, pausedMs: 10_000, paused: false });
  });

  it("says nothing for a run not started yet, nor for a replay (its deadline is its checkpoint's)", () => {
    expect(wallClockUse([], T0)).toBeUndefined();
    expect(wallClockUse([env('run.replayed', 0), env('run.finished', 100, { status: 'succeeded' })], T0 + 200)).toBeUndefined();
  });
});
