export * from './postgres.js';
export { inMemoryTelemetry } from '../telemetry/sdk.js';
export * from './nats.js';
export { writeFormat1Store } from './format-1.js';
export { captureLog, logLine, type LogCapture, type LogRecord, type CapturedLevel } from './log.js';
export { seededWords } from './words.js';
