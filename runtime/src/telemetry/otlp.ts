import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { log } from '../log/mod.js';
import type { Telemetry } from './start.js';
import { runIdGenerator } from './telemetry.js';

/** The OpenTelemetry SDK exporting over OTLP/HTTP, as `startTelemetry` describes; imported by it only when an endpoint is set. */
export function startNodeSdk(o: { nodeId: string; env: NodeJS.ProcessEnv }): Telemetry {
  const serviceName = o.env.OTEL_SERVICE_NAME || 'agent-orchestrator';
  const interval = Number(o.env.OTEL_METRIC_EXPORT_INTERVAL);
  const sdk = new NodeSDK({
    serviceName,
    resource: resourceFromAttributes({ 'service.name': serviceName, 'service.instance.id': o.nodeId, 'ao.node.id': o.nodeId }),
    idGenerator: runIdGenerator,
    traceExporter: new OTLPTraceExporter(),
    metricReaders: [
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter(),
        ...(Number.isFinite(interval) && interval > 0 ? { exportIntervalMillis: interval } : {}),
      }),
    ],
    instrumentations: [],
  });
  sdk.start();
  let stopped: Promise<void> | undefined;
  return { enabled: true, shutdown: () => (stopped ??= sdk.shutdown().catch((e) => log.error('shutdown failed', { component: 'telemetry', err: e }))) };
}
