import { metrics, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { runIdGenerator } from './telemetry.js';

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
