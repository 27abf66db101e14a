export { Engine, effectiveBudget } from './engine.js';
export type { UsageReport } from './budget/usage.js';
export * as ledger from './budget/ledger.js';
export type { EngineOptions, StartRunRequest } from './engine.js';
export type { LlmResolver, RunServices, ActorMessage } from './services.js';
export { PAYLOADS, parseMessage, NodeContextSchema } from './messages.js';
export type { MessageType, Payload, Message, NodeContext } from './messages.js';
export * as scheduler from './run-supervisor/scheduler.js';
export { DEFAULT_SWARM_CONCURRENCY } from './swarm/swarm.js';
