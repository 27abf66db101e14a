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
 *
 * The SDK and its exporters (about 0.2 s of CPU to load) are imported only when they are used.
 */
export async function startTelemetry(o: { nodeId: string; env?: NodeJS.ProcessEnv }): Promise<Telemetry> {
  const env = o.env ?? process.env;
  const endpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (!endpoint || /^true$/i.test(env.OTEL_SDK_DISABLED ?? '')) return { enabled: false, shutdown: async () => {} };
  const { startNodeSdk } = await import('./otlp.js');
  return startNodeSdk({ nodeId: o.nodeId, env });
}
