import { metrics, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags } from '@opentelemetry/api';
import type { Attributes, Context, Counter, Histogram, Link, Span, SpanContext } from '@opentelemetry/api';
import { RandomIdGenerator } from '@opentelemetry/sdk-trace-base';
import type { IdGenerator } from '@opentelemetry/sdk-trace-base';
import type { TraceContext } from '../envelope/mod.js';

export type { Span, Attributes } from '@opentelemetry/api';

/** The instrumentation scope of every span and metric we make. */
export const TRACER_NAME = 'agent-orchestrator';

/**
 * Random ids, except for the span started inside `withIds`: a run's root span gets the ids in the
 * run's trace context (fixed when the run was created), whichever node emits it and however many
 * times the run was resumed in between, so every span of the run hangs off one root.
 */
export class RunIdGenerator implements IdGenerator {
  private readonly random = new RandomIdGenerator();
  private preset: { traceId: string; spanId: string } | undefined;

  generateTraceId(): string {
    return this.preset?.traceId ?? this.random.generateTraceId();
  }

  generateSpanId(): string {
    return this.preset?.spanId ?? this.random.generateSpanId();
  }

  /** Run `fn` (which starts one root span, synchronously) with these ids. */
  withIds<T>(ids: { traceId: string; spanId: string }, fn: () => T): T {
    this.preset = ids;
    try {
      return fn();
    } finally {
      this.preset = undefined;
    }
  }
}

/** The id generator the runtime's tracer provider must use (startTelemetry and tests install it). */
export const runIdGenerator = new RunIdGenerator();

const tracer = () => trace.getTracer(TRACER_NAME);

/** The span context in a W3C trace context, or undefined if there is none (or it is malformed). */
export function spanContextOf(t: TraceContext | null | undefined): SpanContext | undefined {
  const m = t ? /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(t.traceparent) : null;
  if (!m) return undefined;
  return { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16) & TraceFlags.SAMPLED, isRemote: true };
}

/** A span's context as the W3C trace context an envelope carries. */
export function traceContextOf(span: Span): TraceContext | null {
  const c = span.spanContext();
  if (!trace.isSpanContextValid(c)) return null;
  return { traceparent: `00-${c.traceId}-${c.spanId}-${(c.traceFlags & TraceFlags.SAMPLED ? 1 : 0).toString(16).padStart(2, '0')}` };
}

const contextFor = (t: TraceContext | null | undefined): Context => {
  const c = spanContextOf(t);
  return c ? trace.setSpanContext(ROOT_CONTEXT, { ...c, isRemote: false }) : ROOT_CONTEXT;
};

const linksTo = (ts: ReadonlyArray<TraceContext | null | undefined>): Link[] =>
  ts.flatMap((t) => {
    const c = spanContextOf(t);
    return c ? [{ context: c }] : [];
  });

/**
 * A span whose parent is the span named by a trace context (the run's root, or a node's span),
 * linked to the spans of the messages it received (`links`), so a backend can rebuild who sent
 * what to whom even where several messages meet (fan-in).
 */
export function startSpan(
  name: string,
  o: { parent: TraceContext | null | undefined; links?: ReadonlyArray<TraceContext | null | undefined>; attributes?: Attributes; kind?: SpanKind },
): Span {
  return tracer().startSpan(
    name,
    { kind: o.kind ?? SpanKind.INTERNAL, links: linksTo(o.links ?? []), ...(o.attributes ? { attributes: o.attributes } : {}) },
    contextFor(o.parent),
  );
}

/** A child of `parent` (an LLM or tool call inside a node). */
export function startChildSpan(parent: Span | undefined, name: string, attributes: Attributes, kind: SpanKind = SpanKind.INTERNAL): Span {
  const ctx = parent ? trace.setSpan(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
  return tracer().startSpan(name, { kind, attributes }, ctx);
}

/** End a span; an error sets its status and is recorded as an exception event. */
export function endSpan(span: Span, error?: { code?: string; message: string } | Error): void {
  if (error) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.message });
    span.recordException(error instanceof Error ? error : { name: error.code ?? 'Error', message: error.message });
    if (!(error instanceof Error) && error.code) span.setAttribute('error.type', error.code);
  } else {
    span.setStatus({ code: SpanStatusCode.OK });
  }
  span.end();
}

/**
 * The run's root span, emitted once when the run ends, by the node that ends it: its ids are the
 * run's trace context (see RunIdGenerator), its start the run's start, so the spans made by every
 * node that hosted the run, before and after crashes, are its descendants.
 */
export function emitRunSpan(o: {
  trace: TraceContext | null | undefined;
  startTime: number;
  attributes: Attributes;
  error?: { code: string; message: string };
  events?: Array<{ name: string; attributes: Attributes }>;
}): void {
  const c = spanContextOf(o.trace);
  if (!c) return;
  const span = runIdGenerator.withIds({ traceId: c.traceId, spanId: c.spanId }, () =>
    tracer().startSpan('run', { root: true, kind: SpanKind.INTERNAL, startTime: o.startTime, attributes: o.attributes }),
  );
  for (const e of o.events ?? []) span.addEvent(e.name, e.attributes);
  endSpan(span, o.error);
}

export { SpanKind };

interface Instruments {
  runsStarted: Counter;
  runsFinished: Counter;
  stepDuration: Histogram;
  tokens: Counter;
  toolCalls: Counter;
  refusals: Counter;
  throttled: Counter;
}

let instruments: Instruments | undefined;
let instrumentsProvider: unknown;

/** The runtime's metrics, made on the global meter provider (a no-op one unless telemetry is on). */
export function meters(): Instruments {
  const provider = metrics.getMeterProvider();
  if (!instruments || instrumentsProvider !== provider) {
    const m = metrics.getMeter(TRACER_NAME);
    instrumentsProvider = provider;
    instruments = {
      runsStarted: m.createCounter('ao.runs.started', { description: 'Runs started, by graph' }),
      runsFinished: m.createCounter('ao.runs.finished', { description: 'Runs finished, by graph and status' }),
      stepDuration: m.createHistogram('ao.node.duration', { description: 'Duration of one node execution', unit: 'ms' }),
      tokens: m.createCounter('ao.tokens', { description: 'LLM tokens, by graph, node, model and direction' }),
      toolCalls: m.createCounter('ao.tool.calls', { description: 'Tool calls, by graph, node, tool and outcome' }),
      refusals: m.createCounter('ao.budget.refusals', { description: 'Budget refusals, by graph and limit' }),
      throttled: m.createCounter('ao.llm.throttled', {
        description: "LLM calls that waited for capacity under their profile's shared limits, by profile, limit and scope",
      }),
    };
  }
  return instruments;
}

/** Whether prompt text and tool arguments may be recorded on spans (off unless the user opts in). */
export function captureContent(env: NodeJS.ProcessEnv = process.env): boolean {
  return /^(1|true|yes)$/i.test(env.AO_OTEL_CAPTURE_CONTENT ?? '');
}
