import { describe, expect, it } from 'vitest';
import { envelopeIdFor } from '../envelope/mod.js';
import type { Envelope } from '../envelope/mod.js';
import { Recording } from './recording.js';

const ORIG = 'orig-run';
const REPLAY = 'replay-run';

function env(seq: number, type: string, from: string, to: string, key: string): Envelope {
  const dedupeKey = `${type}:${key}`;
  return {
    id: envelopeIdFor(ORIG, dedupeKey),
    runId: ORIG,
    seq,
    type,
    from,
    to,
    causationId: null,
    trace: { traceparent: '00-0123456789abcdef0123456789abcdef-0123456789abcdef-01' },
    time: new Date(0).toISOString(),
    payload: { key },
  } as Envelope;
}

/** The replay's re-emission of an original envelope: same dedupe key, the replay's run id. */
const again = (e: Envelope): Envelope => ({ ...e, id: envelopeIdFor(REPLAY, `${e.type}:${(e.payload as { key: string }).key}`), runId: REPLAY });

describe('a recorded replay delivers budget requests in the order the budget actor took them', () => {
  // The original: branch b's request (seq 2) is taken before the step's checkpoint (seq 3) but
  // its grant was given seq 4, after it; n2's request (seq 5) came after the step.
  const early = env(2, 'budget.request', 'supervisor/n4/b', 'supervisor/budget', 'b/1');
  const late = env(5, 'budget.request', 'supervisor/n2', 'supervisor/budget', 'n2/1');
  const log = [
    env(1, 'budget.granted', 'supervisor/budget', 'supervisor/n4/a', 'a/1'),
    early,
    env(3, 'node.completed', 'supervisor/n1', 'supervisor', 'n1'),
    env(4, 'budget.granted', 'supervisor/budget', 'supervisor/n4/b', 'b/1'),
    late,
    env(6, 'budget.granted', 'supervisor/budget', 'supervisor/n2', 'n2/1'),
  ];

  it('a request from before the step that was decided after it goes first, even when it is re-emitted last', () => {
    const rec = new Recording(ORIG, REPLAY, 'recorded', 3, log);
    // n2 re-runs and asks first: its request reproduces the original's (checked, then linked).
    const n2 = again(late);
    expect(rec.check({ ...n2, seq: 1 }, 1)).toBeUndefined();
    expect(rec.mayDeliver(n2)).toBe(false);
    // b re-emits its request, inherited from before the step: it goes now, then n2's may.
    expect(rec.inherited(`budget.request:b/1`)).toEqual(early);
    const b = again(early);
    expect(rec.mayDeliver(b)).toBe(true);
    rec.delivered(b);
    expect(rec.mayDeliver(n2)).toBe(true);
  });

  it('a request decided before the step does not hold back what comes after it', () => {
    const rec = new Recording(ORIG, REPLAY, 'recorded', 4, log);
    const n2 = again(late);
    expect(rec.check({ ...n2, seq: 1 }, 1)).toBeUndefined();
    expect(rec.mayDeliver(n2)).toBe(true);
  });
});
