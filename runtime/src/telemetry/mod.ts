export { captureContent, emitRunSpan, endSpan, meters, runIdGenerator, RunIdGenerator, SpanKind, spanContextOf, startChildSpan, startSpan, traceContextOf, TRACER_NAME } from './telemetry.js';
export type { Attributes, Span } from './telemetry.js';
export { startTelemetry, tracingTo } from './sdk.js';
export type { Telemetry } from './sdk.js';
