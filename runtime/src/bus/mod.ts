export type { Bus, EnvelopeHandler, Membership, NodeInfo, NodeLoad, Rpc, RunSignal, Subscription, WorkHandler, WorkQueue } from './port.js';
export { isRunSignal, NODE_RUNS_LISTED } from './port.js';
export { NodeInfoSchema } from './node-info.js';
// NatsBus as a type only: connectNatsBus imports its module (and the NATS client) when it is
// called. A value export here would put that module in the static chunks of every bundle that
// imports this barrel (esbuild), loaded whether NATS is used or not.
export type { NatsBus, NatsBusOptions } from './nats/nats-bus.js';
export { connectNatsBus } from './nats/connect.js';
export { InProcessBus } from './in-process/in-process-bus.js';
