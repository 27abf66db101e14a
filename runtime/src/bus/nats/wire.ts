import { z } from 'zod';
import type { JsMsg } from '@nats-io/jetstream';
import { log } from '../../log/mod.js';

/** What the NATS bus's parts share: encoders, schemas of what crosses the wire, the part format. */

export const logger = log.child({ component: 'bus nats' });

export const nanos = (ms: number) => ms * 1_000_000;
export { NodeInfoSchema } from '../node-info.js';
export const RunSignalSchema = z.object({ runId: z.string().min(1), type: z.string().min(1), seq: z.number().int().positive() });
/** A reply on the wire: the handler's value, or its error (code and message). */
export const ReplySchema = z.union([z.object({ ok: z.unknown() }), z.object({ error: z.object({ code: z.string(), message: z.string() }) })]);
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const enc = new TextEncoder();
export const dec = new TextDecoder();

export interface NatsBusOptions {
  url: string;
  /** Prefix of every stream, subject, consumer and bucket (AO_NATS_PREFIX; tests use unique ones). */
  prefix: string;
  /** A name for the connection (shown by the server). */
  name?: string;
  /** Deliveries of a work item before it is parked on the dead-letter subject. */
  maxDeliver?: number;
  /** How long a pulled work item may go unacknowledged before it is redelivered (a node died). */
  ackWaitMs?: number;
  /** How long a node's membership entry lives without a heartbeat. */
  nodeTtlMs?: number;
}

/** The options with their defaults filled in (all but the connection's name). */
export type NatsOptions = Required<Omit<NatsBusOptions, 'name'>>;

/** A commit's envelopes travel as one message up to this size (well under NATS's default 1 MiB payload limit). */
export const COMMIT_MESSAGE_BYTES = 256 * 1024;
/**
 * An envelope larger than that (a long conversation's request, a large tool result) travels in
 * parts of this size, each a message with an `Ao-Part: i/n` header, put together by the
 * receiver: NATS refuses a message past its max payload (1 MiB by default), and retrying one
 * would hold back every later envelope of the run.
 */
export const PART_BYTES = 256 * 1024;
export const PART_HEADER = 'Ao-Part';

/**
 * A message's bytes, put together from its parts: the message's own when it is not a part;
 * undefined while parts are still to come, or when one is missing (the message is then lost to
 * this subscriber). `parts` holds the subscriber's messages in progress.
 */
export function joinParts(parts: Map<string, Uint8Array[]>, msg: JsMsg): Uint8Array | undefined {
  // A large message comes in parts, in order on its subject: kept until the last one.
  const part = msg.headers?.get(PART_HEADER);
  if (!part) return msg.data;
  const [i, n] = part.split('/').map(Number);
  // Parts of one message share its id (before `/part/`): another publisher's messages may come between them.
  const key = `${msg.subject} ${(msg.headers?.get('Nats-Msg-Id') ?? '').replace(/\/part\/\d+\/\d+$/, '')}`;
  const got = i === 1 ? [] : parts.get(key);
  if (!got || got.length !== i! - 1) {
    parts.delete(key); // a part missing (e.g. subscribed mid-message): that message is lost to this subscriber
    logger.error(`dropped part ${part} of a message on ${msg.subject}: its earlier parts were not received`);
    return undefined;
  }
  got.push(msg.data);
  if (i! < n!) {
    parts.set(key, got);
    return undefined;
  }
  parts.delete(key);
  return Buffer.concat(got);
}
