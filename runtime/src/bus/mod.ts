export type { Bus, EnvelopeHandler, Membership, NodeInfo, Rpc, Subscription, WorkHandler, WorkQueue } from './port.js';
export { NatsBus } from './nats/nats-bus.js';
export type { NatsBusOptions } from './nats/nats-bus.js';
export { InProcessBus } from './in-process/in-process-bus.js';
