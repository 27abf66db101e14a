import { metrics, trace } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { runIdGenerator } from './telemetry.js';

export interface Telemetry {
  /** Whether spans and metrics are exported (an OTLP endpoint is configured). */
  readonly enabled: boolean;
  /** Flush and stop: no span is lost on a clean exit. */
  shutdown(): Promise<void>;
}

/**
 * Set up OpenTelemetry from the standard `OTEL_*` variables: with `OTEL_EXPORTER_OTLP_ENDPOINT`
 * (or the traces-specific one) spans and metrics go there over OTLP/HTTP, with the service name
 * (`OTEL_SERVICE_NAME`, default `agent-orchestrator`) and this runtime node's id as resource
 * attributes; without one nothing is set up and every span is a no-op. `OTEL_SDK_DISABLED=true`
 * turns it off.
 */
export function startTelemetry(o: { nodeId: string; env?: NodeJS.ProcessEnv }): Telemetry {
  const env = o.env ?? process.env;
  const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (!endpoint || /^true$/i.test(env.OTEL_SDK_DISABLED ?? '')) return { enabled: false, shutdown: async () => {} };
  const serviceName = env.OTEL_SERVICE_NAME || 'agent-orchestrator';
  const interval = Number(env.OTEL_METRIC_EXPORT_INTERVAL);
  const sdk = new NodeSDK({
    serviceName,
    resource: resourceFromAttributes({ 'service.name': serviceName, 'service.instance.id': o.nodeId, 'ao.node.id': o.nodeId }),
    idGenerator: runIdGenerator,
    traceExporter: new OTLPTraceExporter(),
    metricReaders: [
      new PeriodicExportingMetricReader({ exporter: new OTLPMetricExporter(), ...(Number.isFinite(interval) && interval > 0 ? { exportIntervalMillis: interval } : {}) }),
    ],
    instrumentations: [],
  });
  sdk.start();
  let stopped: Promise<void> | undefined;
  return { enabled: true, shutdown: () => (stopped ??= sdk.shutdown().catch((e) => console.error('[telemetry] shutdown failed:', e))) };
}

/**
 * For tests: spans and metrics kept in memory, on global providers that use the runtime's id
 * generator. Call `reset()` after each test file.
 */
export function inMemoryTelemetry(): { spans: InMemorySpanExporter; metrics: () => Promise<InMemoryMetricExporter>; reset: () => void } {
  const spans = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ idGenerator: runIdGenerator, spanProcessors: [new SimpleSpanProcessor(spans)] });
  trace.setGlobalTracerProvider(provider);
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  metrics.setGlobalMeterProvider(meterProvider);
  return {
    spans,
    metrics: async () => {
      await reader.forceFlush();
      return metricExporter;
    },
    reset: () => {
      trace.disable();
      metrics.disable();
    },
  };
}

/**
 * Tracing only, exported over OTLP/HTTP to `url` with a batch processor, as the SDK does it (the
 * bench uses this to measure the cost of tracing). Returns how to stop it (flushing).
 */
export function tracingTo(url: string): { shutdown: () => Promise<void> } {
  const provider = new BasicTracerProvider({ idGenerator: runIdGenerator, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url }))] });
  trace.setGlobalTracerProvider(provider);
  return {
    shutdown: async () => {
      await provider.shutdown();
      trace.disable();
    },
  };
}
