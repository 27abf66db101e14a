import { envelopeIdFor } from '@ao/runtime';
import type { Envelope } from '@ao/runtime';
import { describe, expect, it } from 'vitest';
import { parseMessage } from './messages.js';

const env = (type: string, payload: unknown): Envelope =>
  ({
    id: envelopeIdFor('r', `${type}/${JSON.stringify(payload)}`),
    runId: 'r',
    seq: 1,
    from: 'supervisor/a',
    to: 'supervisor/budget',
    type,
    payload,
    causationId: null,
    trace: null,
    time: new Date(0).toISOString(),
  }) as Envelope;

describe('parseMessage', () => {
  it('validates an envelope once: the same envelope read again gives the same message', () => {
    const e = env('budget.release', { key: 'supervisor/a/1' });
    const m = parseMessage(e);
    expect(m.payload).toEqual({ key: 'supervisor/a/1' });
    expect(parseMessage(e)).toBe(m);
  });

  it('refuses an invalid payload every time it is read, naming the field', () => {
    const e = env('budget.release', { key: 7 });
    for (let i = 0; i < 2; i++) expect(() => parseMessage(e)).toThrow(expect.objectContaining({ code: 'AO_ENVELOPE_INVALID', field: 'payload.key' }));
  });
});
