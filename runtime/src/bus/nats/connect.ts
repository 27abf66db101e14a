import type { NatsBus, NatsBusOptions } from './nats-bus.js';

/**
 * `NatsBus.connect`, with the NATS client (JetStream, KV) imported only here: a node without
 * `NATS_URL` never loads it.
 */
export async function connectNatsBus(o: NatsBusOptions): Promise<NatsBus> {
  const { NatsBus } = await import('./nats-bus.js');
  return NatsBus.connect(o);
}
