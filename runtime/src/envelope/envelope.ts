import { createHash, randomFillSync, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { AoError, zodIssuePath } from '@ao/graphs';
import { checkPayload } from './typed.js';
import type { EnvelopeType, Typed } from './typed.js';

/**
 * Address of an actor within a run: its path in the actor tree, segments joined by `/`
 * (`supervisor`, `supervisor/analyse`, `supervisor/analyse/branch-2`), or an effect endpoint
 * (`llm/default`, `tool/web_search`). Built with {@link actorPath}, never by hand.
 */
const SEGMENT = /^[A-Za-z0-9_.@-]+$/;
/** Paths seen valid (a run's few actors send thousands of envelopes); bounded, then started again. */
const VALID_PATHS = new Set<string>();
function validPath(s: string): boolean {
  if (VALID_PATHS.has(s)) return true;
  if (!s.split('/').every((seg) => SEGMENT.test(seg))) return false;
  if (VALID_PATHS.size >= 10_000) VALID_PATHS.clear();
  VALID_PATHS.add(s);
  return true;
}
export const ActorPathSchema = z.string().min(1).max(512).refine(validPath, 'actor path segments are [A-Za-z0-9_.@-]+').brand<'ActorPath'>();
export type ActorPath = z.infer<typeof ActorPathSchema>;

export function actorPath(...segments: string[]): ActorPath {
  for (const s of segments) {
    if (!SEGMENT.test(s)) throw new TypeError(`invalid actor path segment ${JSON.stringify(s)}`);
  }
  return segments.join('/') as ActorPath;
}

/** W3C trace context carried by every envelope, so a run stays one trace across processes. */
export const TraceContextSchema = z.object({
  traceparent: z.string().regex(/^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/),
  tracestate: z.string().optional(),
});
export type TraceContext = z.infer<typeof TraceContextSchema>;

/** A fresh trace for a new run (the telemetry issue replaces this with the OTel SDK's context). */
export function newTraceContext(): TraceContext {
  return { traceparent: `00-${randomHex(16)}-${randomHex(8)}-01` };
}

/** Random bytes drawn from a pool filled 4 KiB at a time: a burst of 1,000 new runs is not 2,000 calls into the CSPRNG. */
const RANDOM_POOL = Buffer.alloc(4096);
let randomAt = RANDOM_POOL.length;
function randomHex(bytes: number): string {
  if (randomAt + bytes > RANDOM_POOL.length) {
    randomFillSync(RANDOM_POOL);
    randomAt = 0;
  }
  randomAt += bytes;
  return RANDOM_POOL.toString('hex', randomAt - bytes, randomAt);
}

/**
 * A run's trace context, rebuilt from its id and stored trace id: the root span id is derived from
 * the run id, so any node (one that takes the run from a queue before it has any event, or one
 * that resumes it) arrives at the same context the run was created with.
 */
export function runTraceContext(runId: string, traceId?: string | null): TraceContext {
  const t = traceId && /^[0-9a-f]{32}$/.test(traceId) ? traceId : createHash('sha256').update(`trace\0${runId}`).digest('hex').slice(0, 32);
  const span = createHash('sha256').update(`root\0${runId}`).digest('hex').slice(0, 16);
  return { traceparent: `00-${t}-${span}-01` };
}

export function traceIdOf(t: TraceContext | null | undefined): string | undefined {
  return t?.traceparent.split('-')[1];
}

/**
 * The one message format: the event log, the bus, the WebSocket stream and replay all carry it.
 * `seq` is gapless per run and assigned when the envelope is journaled; `id` is globally unique,
 * so writing or delivering the same envelope twice is a no-op.
 */
export const EnvelopeSchema = z.object({
  id: z.uuid(),
  runId: z.string().min(1).max(128),
  seq: z.number().int().positive(),
  from: ActorPathSchema,
  to: ActorPathSchema,
  type: z.string().regex(/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/, 'type is dotted lower case, e.g. node.completed'),
  payload: z.unknown(),
  causationId: z.uuid().nullable(),
  trace: TraceContextSchema.nullable(),
  time: z.iso.datetime({ offset: true }),
});
export type Envelope = z.infer<typeof EnvelopeSchema>;

/**
 * An envelope before the journal gives it an id, a seq and a time. `dedupeKey` names the emission
 * deterministically within the run (e.g. `supervisor/refund/done`, `<effect key>/req`): the id is
 * derived from it, so an actor that re-runs after a crash emits the same ids, and the journal
 * recognises what it already holds instead of writing it twice. Its type and payload are one of
 * {@link Typed}: a payload that does not fit its type does not compile (the journal still checks it).
 */
export type EnvelopeDraft<T extends EnvelopeType = EnvelopeType> = DraftFields & Typed<T>;
/** What every draft has besides its type and payload. */
export type DraftFields = Omit<Envelope, 'seq' | 'id' | 'time' | 'type' | 'payload'> & { dedupeKey: string; time?: string };

declare const FORWARDED: unique symbol;
/**
 * A draft that came over the wire (a node task's appends, sent to the run's host to journal): its
 * type and payload are what its writer typed, not what this code can prove. Made only by
 * {@link forwardedDraft}; the journal checks its payload like any other (`parseEnvelope`).
 */
export type ForwardedDraft = UntypedDraft & { readonly [FORWARDED]: true };
/** A draft as the wire carries it: any type, any payload. */
export type UntypedDraft = DraftFields & { type: string; payload: unknown };

/** A draft received from another process, marked as such (what the journal accepts besides typed drafts). */
export function forwardedDraft(d: UntypedDraft): ForwardedDraft {
  // The brand exists only in the type: it marks the one place untyped drafts enter.
  return d as ForwardedDraft;
}

/** What a journal append takes: drafts this code typed, or drafts forwarded from another node. */
export type AnyDraft = EnvelopeDraft | ForwardedDraft;

export function newEnvelopeId(): string {
  return randomUUID();
}

/** A version 8 (custom, hash-based) UUID from a run id and a dedupe key: same inputs, same id. */
export function envelopeIdFor(runId: string, dedupeKey: string): string {
  const h = createHash('sha256').update(runId).update('\0').update(dedupeKey).digest();
  h[6] = (h[6]! & 0x0f) | 0x80;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

/** Each envelope's payload as JSON, serialised once (for the store and the checks before it). */
const payloadJson = new WeakMap<Envelope, string>();

/** The payload of an envelope as JSON, serialised once however often it is asked for. */
export function payloadJsonOf(env: Envelope): string {
  let json = payloadJson.get(env);
  if (json === undefined) {
    json = JSON.stringify(env.payload ?? null);
    payloadJson.set(env, json);
  }
  return json;
}

/** A whole envelope as JSON, its payload's part reused (what the bus sends). */
export function envelopeJson(env: Envelope): string {
  const { payload: _payload, ...rest } = env;
  return `${JSON.stringify(rest).slice(0, -1)},"payload":${payloadJsonOf(env)}}`;
}

/**
 * What Postgres `jsonb` refuses: a NUL character, and a lone surrogate (JSON.stringify escapes
 * exactly these two as `\u0000` and `\udXXX`; an escaped backslash before them does not count).
 */
const UNSTORABLE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

/** The largest payload an envelope may carry (its JSON, in bytes) unless configured otherwise: 8 MiB. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 8 * 1024 * 1024;

/**
 * Refuse, before it is written or delivered, an envelope the store cannot hold (or one past the
 * payload cap, which would only bloat the log), so the append
 * that made it fails (as its commit would) rather than one that merely shares its commit.
 */
export function assertStorable(env: Envelope, maxPayloadBytes = DEFAULT_MAX_PAYLOAD_BYTES): void {
  const json = payloadJsonOf(env);
  // A UTF-8 byte is at most one UTF-16 unit and a unit at most 3 bytes: count only when it matters.
  if (json.length * 3 > maxPayloadBytes && Buffer.byteLength(json) > maxPayloadBytes) {
    const bytes = Buffer.byteLength(json);
    throw new AoError(
      'AO_PAYLOAD_TOO_LARGE',
      `envelope ${env.type} cannot be stored: its payload is ${bytes} bytes, over the limit of ${maxPayloadBytes} (AO_MAX_PAYLOAD_BYTES)`,
      { field: 'payload', details: { bytes, max: maxPayloadBytes } },
    );
  }
  if (UNSTORABLE.test(json)) {
    throw new AoError(
      'AO_ENVELOPE_INVALID',
      `envelope ${env.type} cannot be stored: its payload holds a NUL character or a lone surrogate, which Postgres jsonb refuses`,
      { field: 'payload' },
    );
  }
}

/**
 * Validate an envelope where it enters (the journal's append, a bus delivery, a store read); a bad
 * one is AO_ENVELOPE_INVALID naming the field. Its payload is checked against its type's schema
 * here, once (`checkPayload`: a payload that does not fit still enters, read-only), unless
 * `payload: 'later'`: the store's row decoder, whose payloads are not whole yet (references to
 * other rows, request deltas); those are checked when first read as a type (`isEnvelopeOf`).
 */
export function parseEnvelope(raw: unknown, o?: { payload?: 'now' | 'later' }): Envelope {
  const r = EnvelopeSchema.safeParse(raw);
  if (!r.success) {
    const field = zodIssuePath(r.error.issues[0]);
    throw new AoError('AO_ENVELOPE_INVALID', `invalid envelope: ${field ?? '(root)'}: ${r.error.issues[0]?.message}`, {
      ...(field ? { field } : {}),
    });
  }
  if (o?.payload !== 'later') checkPayload(r.data);
  return r.data;
}
