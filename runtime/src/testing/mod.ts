export * from './postgres.js';
export { inMemoryTelemetry } from '../telemetry/sdk.js';
export * from './nats.js';
