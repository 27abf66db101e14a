import type { z } from 'zod';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { envelopeIdFor, parseEnvelope } from './envelope.js';
import type { Envelope } from './envelope.js';
import { PAYLOADS } from './payloads.js';
import { ENVELOPE_TYPES, isEnvelopeOf, parseMessage, payloadChecks, payloadOf, typedEnvelope, unhandledEnvelope } from './typed.js';
import type { EnvelopeType, Payload, TypedEnvelope } from './typed.js';

const raw = (type: string, payload: unknown, seq = 1) => ({
  id: envelopeIdFor('r', `${type}/${seq}/${JSON.stringify(payload)}`),
  runId: 'r',
  seq,
  from: 'supervisor/a',
  to: 'supervisor/budget',
  type,
  payload,
  causationId: null,
  trace: null,
  time: new Date(0).toISOString(),
});

/** Mutually assignable: a schema's input and output are the same type (no defaults, no transforms). */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type InputIsOutput = { [T in EnvelopeType]: Same<z.input<(typeof PAYLOADS)[T]>, z.output<(typeof PAYLOADS)[T]>> }[EnvelopeType];

describe('the envelope union', () => {
  it('has one schema per type, and each schema types its payload as written (input = output)', () => {
    expect(ENVELOPE_TYPES).toEqual(Object.keys(PAYLOADS));
    expectTypeOf<InputIsOutput>().toEqualTypeOf<true>();
    expectTypeOf<Payload<'budget.release'>>().toEqualTypeOf<{ key: string }>();
  });

  it('narrows an envelope of a known type whose payload fits, and keeps the payload object as written', () => {
    const payload = { key: 'supervisor/a/1', extra: 'kept on the wire' };
    const e = parseEnvelope(raw('budget.release', payload));
    expect(isEnvelopeOf(e, 'budget.release')).toBe(true);
    expect(isEnvelopeOf(e, 'budget.settle')).toBe(false);
    expect(payloadOf(e, 'budget.release')).toBe(payload);
    expect(payloadOf(e, 'budget.settle')).toBeUndefined();
    expect(typedEnvelope(e)?.type).toBe('budget.release');
  });

  it('reads an unknown type (a newer writer) and a payload of another shape (an old log) as plain envelopes, never narrowed', () => {
    const newer = parseEnvelope(raw('node.progress', { text: 'half way' }));
    const older = parseEnvelope(raw('run.finished', { state: 'done' }));
    expect(newer.payload).toEqual({ text: 'half way' });
    expect(older.payload).toEqual({ state: 'done' });
    expect(typedEnvelope(newer)).toBeUndefined();
    expect(typedEnvelope(older)).toBeUndefined();
    expect(payloadOf(older, 'run.finished')).toBeUndefined();
    expect(() => parseMessage(newer)).toThrow(expect.objectContaining({ code: 'AO_ENVELOPE_INVALID', field: 'type' }));
    expect(() => parseMessage(older)).toThrow(expect.objectContaining({ code: 'AO_ENVELOPE_INVALID', field: 'payload.status' }));
  });

  it('checks a payload once where its envelope enters: parsed again (another bus), copied or read as a message, it is not checked again', () => {
    const before = payloadChecks();
    const e = parseEnvelope(raw('budget.release', { key: 'supervisor/a/2' }));
    expect(payloadChecks()).toBe(before + 1);
    const again = parseEnvelope(e);
    const copy: Envelope = { ...again, seq: 2 };
    expect(isEnvelopeOf(copy, 'budget.release')).toBe(true);
    expect(parseMessage(again).payload).toEqual({ key: 'supervisor/a/2' });
    expect(parseMessage(copy).type).toBe('budget.release');
    expect(payloadChecks()).toBe(before + 1);
  });

  it("gives an actor the schema's output (unknown keys dropped), as it did before the union", () => {
    const m = parseMessage(parseEnvelope(raw('budget.release', { key: 'k', extra: 1 })));
    expect(m.payload).toEqual({ key: 'k' });
  });

  it('closes a switch over every type with `satisfies never`', () => {
    const kind = (e: TypedEnvelope): string => {
      switch (e.type) {
        case 'run.started':
        case 'run.finished':
        case 'run.parked':
        case 'run.waiting':
        case 'run.resumed':
        case 'run.migrated':
        case 'run.replayed':
        case 'replay.diverged':
          return 'run';
        case 'wait.registered':
        case 'wait.opened':
        case 'wait.resolved':
          return 'wait';
        case 'node.start':
        case 'node.completed':
        case 'node.failed':
        case 'node.skipped':
        case 'node.retry_scheduled':
        case 'loop.iterated':
        case 'branch.start':
        case 'branch.completed':
        case 'branch.failed':
        case 'branch.retry_scheduled':
        case 'task.started':
        case 'task.completed':
        case 'task.failed':
          return 'node';
        case 'llm.request':
        case 'llm.response':
        case 'llm.failed':
        case 'llm.throttled':
        case 'tool.call':
        case 'tool.result':
        case 'effect.reconciled':
        case 'effect.unknown_outcome':
          return 'effect';
        case 'budget.request':
        case 'budget.granted':
        case 'budget.refused':
        case 'budget.waiting':
        case 'budget.settle':
        case 'budget.release':
        case 'budget.held':
        case 'budget.escalated':
        case 'budget.raised':
        case 'budget.exceeded':
          return 'budget';
        default:
          return unhandledEnvelope(e satisfies never);
      }
    };
    const e = typedEnvelope(parseEnvelope(raw('budget.release', { key: 'k' })));
    expect(e && kind(e)).toBe('budget');
  });
});
