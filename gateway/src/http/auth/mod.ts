export { Authenticator, DEFAULT_TENANT, OPEN_PRINCIPAL } from './authenticator.js';
export type { AuthOptions, Principal } from './authenticator.js';
export { createApiKey, hashKey, keyIdOf, TENANT } from './keys.js';
export { ActiveRunCap, GatewayEnvSchema, gatewayEnv, limitsOf, StreamSlots } from './limits.js';
export type { GatewayEnv, Limits } from './limits.js';
export { credentialOf, isProtected, registerGuard, visible } from './guard.js';
export { ownRun, RUN_ID } from './scope.js';
