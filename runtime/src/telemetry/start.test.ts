import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { trace } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';
import { startTelemetry } from './start.js';

// startTelemetry loads the OpenTelemetry SDK only with an endpoint; both ways it answers the same.
describe('startTelemetry', () => {
  it('without an OTLP endpoint, or with OTEL_SDK_DISABLED, sets nothing up', async () => {
    for (const env of [{}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1', OTEL_SDK_DISABLED: 'true' }]) {
      const t = await startTelemetry({ nodeId: 'n1', env });
      expect(t.enabled).toBe(false);
      await t.shutdown();
    }
  });

  it('with an endpoint, starts the SDK and exports a span to it at shutdown', async () => {
    const posts: string[] = [];
    const collector = createServer((req, res) => {
      posts.push(req.url ?? '');
      req.resume();
      req.on('end', () => res.end('{}'));
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    // The SDK's exporters read the endpoint from the process's environment themselves.
    const before = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${(collector.address() as AddressInfo).port}`;
    try {
      const t = await startTelemetry({ nodeId: 'n1' });
      expect(t.enabled).toBe(true);
      trace.getTracer('start-test').startSpan('one').end();
      await t.shutdown();
      expect(posts).toContain('/v1/traces');
    } finally {
      if (before === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
      else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = before;
      trace.disable();
      await new Promise((r) => collector.close(r));
    }
  });
});
