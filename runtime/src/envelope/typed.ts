import type { z } from 'zod';
import { AoError } from '@ao/graphs';
import type { Envelope } from './envelope.js';
import { PAYLOADS } from './payloads.js';

/** Every envelope type the code emits: the keys of {@link PAYLOADS}. */
export type EnvelopeType = keyof typeof PAYLOADS;
/** The payload of an envelope type, inferred from its schema (never written by hand). */
export type Payload<T extends EnvelopeType> = z.infer<(typeof PAYLOADS)[T]>;
/** An envelope of one known type whose payload fits its schema. */
export type EnvelopeOf<T extends EnvelopeType> = Omit<Envelope, 'type' | 'payload'> & { type: T; payload: Payload<T> };
/**
 * The discriminated union of the known envelopes: narrow it with `switch (e.type)` and close the
 * switch with `e satisfies never` where it means to cover every type. An {@link Envelope} (type
 * `string`, payload `unknown`) stays the read-only fallback: what a newer writer or an old log
 * holds (a type this code does not know, or a payload of an older shape) is stored, streamed and
 * replayed as it is, and is simply never narrowed to a type ({@link isEnvelopeOf} says no).
 */
export type TypedEnvelope = { [T in EnvelopeType]: EnvelopeOf<T> }[EnvelopeType];
/**
 * A type with its payload, as code writes them (a draft's, an emission's): `Typed` is the union
 * over every type, `Typed<'a' | 'b'>` over those. Writing a payload that does not fit its type is
 * a compile error (see `typed-draft.test.ts`).
 */
export type Typed<T extends EnvelopeType = EnvelopeType> = { [U in T]: { type: U; payload: Payload<U> } }[T];
/**
 * A type and its payload as a {@link Typed}: for a helper generic over the type (`reply(type,
 * payload)`), whose `{ type, payload }` TypeScript cannot see is a member of the union.
 */
export function typed<T extends EnvelopeType>(type: T, payload: Payload<T>): Typed {
  // `{ type: T; payload: Payload<T> }` is `Typed<T>`, one member of `Typed` for every T.
  return { type, payload } as Typed;
}
/** A received envelope whose payload matched its type's schema: `payload` is the schema's output (unknown keys dropped). */
export type Message = { [T in EnvelopeType]: { type: T; payload: Payload<T>; env: Envelope } }[EnvelopeType];

/** The known envelope types, in the order of {@link PAYLOADS}. */
export const ENVELOPE_TYPES: readonly EnvelopeType[] = Object.keys(PAYLOADS).filter(isEnvelopeType);

export function isEnvelopeType(type: string): type is EnvelopeType {
  return Object.prototype.hasOwnProperty.call(PAYLOADS, type);
}

/** How a payload fared against its type's schema. */
type Checked = { type: EnvelopeType; ok: true; data: unknown } | { type: EnvelopeType; ok: false; field: string; message: string };

/**
 * Checks, by payload object: an envelope is copied on its way (the journal's parse, a bus's parse,
 * `{...env, seq}`) but its payload is the same object, so a payload is checked once however many
 * envelopes carry it. Payloads are not changed once emitted.
 */
const CHECKED = new WeakMap<object, Checked>();
let checks = 0;

/** How many payloads have been checked against their schema in this process (what tests count). */
export function payloadChecks(): number {
  return checks;
}

function checked(env: Envelope): Checked | undefined {
  const type = env.type;
  if (!isEnvelopeType(type)) return undefined;
  const p = env.payload;
  const key = typeof p === 'object' && p !== null ? p : undefined;
  const seen = key && CHECKED.get(key);
  if (seen && seen.type === type) return seen;
  checks++;
  const r = (PAYLOADS[type] as z.ZodType).safeParse(p);
  let c: Checked;
  if (r.success) c = { type, ok: true, data: r.data };
  else {
    const issue = r.error.issues[0]!;
    c = { type, ok: false, field: ['payload', ...issue.path.map(String)].join('.'), message: issue.message };
  }
  if (key) CHECKED.set(key, c);
  return c;
}

/**
 * Check an envelope's payload where it enters (called by `parseEnvelope`, so by the journal's
 * append, the buses' deliveries and the store's reads). Never throws: a payload that does not fit
 * (an older shape, a newer writer's) still enters, read-only; it is refused only where an actor
 * takes it as a message ({@link parseMessage}).
 */
export function checkPayload(env: Envelope): void {
  checked(env);
}

/**
 * Whether an envelope is of a type and its payload fits that type's schema: the type guard that
 * replaces `env.payload as ...`. The payload stays the object written (what the wire carries).
 *
 * @example
 * if (isEnvelopeOf(e, 'budget.granted')) reserve(ledger, e.payload.key, e.payload.reservation);
 */
export function isEnvelopeOf<T extends EnvelopeType>(env: Envelope, type: T): env is Envelope & EnvelopeOf<T> {
  return env.type === type && checked(env)?.ok === true;
}

/**
 * An envelope's payload as its type, or undefined when the envelope is of another type or its
 * payload does not fit (an old log's shape).
 *
 * @example
 * const status = payloadOf(e, 'run.finished')?.status;
 */
export function payloadOf<T extends EnvelopeType>(env: Envelope | undefined, type: T): Payload<T> | undefined {
  return env && isEnvelopeOf(env, type) ? env.payload : undefined;
}

/**
 * The payload of an envelope that must be of this type (a reply the code waits for, a recording it
 * looks up by key): AO_ENVELOPE_INVALID naming the field when it is of another type or does not fit.
 */
export function requirePayload<T extends EnvelopeType>(env: Envelope, type: T): Payload<T> {
  if (isEnvelopeOf(env, type)) return env.payload;
  if (env.type !== type) throw new AoError('AO_ENVELOPE_INVALID', `expected ${type}, got ${env.type}`, { field: 'type' });
  const c = checked(env);
  const field = c && !c.ok ? c.field : 'payload';
  throw new AoError('AO_ENVELOPE_INVALID', `${type}: ${field}: ${c && !c.ok ? c.message : 'invalid'}`, { field });
}

/**
 * One field of a payload of any type or shape (undefined when the payload is not an object or has
 * no such field): for code that reads what several types share, or what an old log's shape may
 * lack, without claiming a type.
 */
export function payloadField(payload: unknown, key: string): unknown {
  return typeof payload === 'object' && payload !== null && Object.prototype.hasOwnProperty.call(payload, key) ? Reflect.get(payload, key) : undefined;
}

/** A typed view of any envelope: undefined for a type this code does not know or a payload that does not fit. */
export function typedEnvelope(env: Envelope): TypedEnvelope | undefined {
  // The guard's claim: the payload was checked against the schema of exactly this type.
  return checked(env)?.ok ? (env as TypedEnvelope) : undefined;
}

/** Messages by envelope: an actor reads the same message again (its recipient, the run's folds). */
const MESSAGES = new WeakMap<Envelope, Message>();

/**
 * An envelope as a message an actor acts on: an unknown type or a payload that does not fit its
 * schema is AO_ENVELOPE_INVALID naming the field. The payload was checked where the envelope
 * entered; this only reads that result (an envelope built by hand is checked here, once).
 */
export function parseMessage(env: Envelope): Message {
  const seen = MESSAGES.get(env);
  if (seen) return seen;
  const c = checked(env);
  if (!c) throw new AoError('AO_ENVELOPE_INVALID', `unknown message type ${env.type}`, { field: 'type' });
  if (!c.ok) throw new AoError('AO_ENVELOPE_INVALID', `${env.type}: ${c.field}: ${c.message}`, { field: c.field });
  // `data` is the output of the schema of `c.type`, which is `env.type`.
  const m = { type: c.type, payload: c.data, env } as Message;
  MESSAGES.set(env, m);
  return m;
}

/**
 * The payload an actor acts on, of the one type it expects here (its caller checked `env.type`):
 * {@link parseMessage}'s, so AO_ENVELOPE_INVALID when the envelope is of another type or does not fit.
 *
 * @example
 * if (msg.type !== 'node.start') return state;
 * const start = messagePayload(msg, 'node.start');
 */
export function messagePayload<T extends EnvelopeType>(env: Envelope, type: T): Payload<T> {
  const data: unknown = parseMessage(env).payload;
  if (!isOutputOf(checked(env), type, data)) throw new AoError('AO_ENVELOPE_INVALID', `expected ${type}, got ${env.type}`, { field: 'type' });
  return data;
}

/** Whether `data` is the output of `type`'s schema: `c` is its check (what `parseMessage` returned it from). */
function isOutputOf<T extends EnvelopeType>(c: Checked | undefined, type: T, data: unknown): data is Payload<T> {
  return c !== undefined && c.ok && c.type === type && c.data === data;
}

/** For the `default` of a switch meant to cover every envelope type: a type missing there does not compile. */
export function unhandledEnvelope(type: never): never {
  throw new AoError('AO_ENVELOPE_INVALID', `no case for envelope type ${String(type)}`, { field: 'type' });
}
