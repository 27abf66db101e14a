export { Engine } from './engine.js';
export { effectiveBudget } from './intake.js';
export type { StartRunRequest } from './intake.js';
export type { EngineOptions } from './options.js';
export { FOLLOW_RESYNC_MS, QUEUE_OWNER } from './options.js';
export type { ApiKeyPort } from './ports.js';
export type { RunQueries } from './queries.js';
export type { SignalRequest, SignalResult } from './waits.js';
