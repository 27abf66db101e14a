import type { Envelope } from '../envelope/mod.js';

export type EnvelopeHandler = (env: Envelope) => void | Promise<void>;

export interface Subscription {
  unsubscribe(): void;
}

/**
 * The bus carries envelopes between actors (and to observers) after the journal has committed
 * them. Delivery is at-least-once and in publish order per subscriber; the envelope id makes a
 * redelivery detectable. Adapters: in-process (here), NATS JetStream (a later issue).
 */
export interface Bus {
  readonly kind: string;
  publish(env: Envelope): Promise<void>;
  /** Every envelope of one run (`runId`), or of all runs (`'*'`). */
  subscribe(runId: string, handler: EnvelopeHandler): Subscription;
  close(): Promise<void>;
}
