export { buildApp, INSPECTOR_BUILD } from './http/app.js';
export type { AppOptions } from './http/app.js';
export { HTTP_STATUS } from './http/errors.js';
export { startRuntime } from './node.js';
export type { Runtime } from './node.js';
