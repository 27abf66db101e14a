export { buildApp, INSPECTOR_BUILD } from './http/app.js';
export type { AppOptions, Gate } from './http/app.js';
export { HTTP_STATUS } from './http/errors.js';
export { createApiKey, DEFAULT_TENANT } from './http/auth/mod.js';
export type { Limits, Principal } from './http/auth/mod.js';
export { drainAndClose } from './http/shutdown.js';
export { startRuntime } from './node.js';
export type { Runtime } from './node.js';
