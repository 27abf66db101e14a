export {
  captureContent,
  emitRunSpan,
  endSpan,
  meters,
  runIdGenerator,
  RunIdGenerator,
  SpanKind,
  spanContextOf,
  startChildSpan,
  startSpan,
  traceContextOf,
  TRACER_NAME,
} from './telemetry.js';
export type { Attributes, Span } from './telemetry.js';
export { tracingTo } from './sdk.js';
export { startTelemetry } from './start.js';
export type { Telemetry } from './start.js';
