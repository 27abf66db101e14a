/**
 * The envelope types and their payloads live in `@ao/runtime` (`runtime/src/envelope/payloads.ts`,
 * one source for every package); this module keeps the actors' names for them.
 */
export { NodeContextSchema, PAYLOADS, parseMessage } from '@ao/runtime';
export type { EnvelopeType as MessageType, Message, NodeContext, Payload } from '@ao/runtime';
