import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer } from './process.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: Array<{ key: string; value: Record<string, unknown> }>;
}
interface OtlpTraces {
  resourceSpans: Array<{ resource: { attributes: Array<{ key: string; value: { stringValue?: string } }> }; scopeSpans: Array<{ spans: OtlpSpan[] }> }>;
}

/** A local OTLP/HTTP receiver (JSON): what an OpenTelemetry Collector would get. */
function receiver() {
  const posts: Array<{ path: string; body: unknown }> = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        posts.push({ path: req.url ?? '', body: JSON.parse(text) as unknown });
      } catch {
        posts.push({ path: req.url ?? '', body: { unparsed: req.headers['content-type'] } });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return {
    posts,
    start: () => new Promise<string>((r) => server.listen(0, '127.0.0.1', () => r(`http://127.0.0.1:${(server.address() as AddressInfo).port}`))),
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('OTLP export end to end', () => {
  const otlp = receiver();
  let dir: string;
  let endpoint: string;
  beforeAll(async () => {
    endpoint = await otlp.start();
    dir = await mkdtemp(join(tmpdir(), 'ao-otlp-'));
  });
  afterAll(async () => {
    await otlp.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("a real ao serve exports the run's spans and metrics to the OTLP endpoint, all flushed by a clean stop", async () => {
    const server = await startServer({ AO_DATA_DIR: dir, OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SERVICE_NAME: 'ao-e2e', AO_NODE_ID: 'otlp-node' });
    let run: { id: string; traceId: string; status: string };
    try {
      const res = await fetch(`${server.url}/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ graph: 'triage', input: { intent: 'refund', order: 'A-3' } }),
      });
      const { id } = (await res.json()) as { id: string };
      for (;;) {
        run = (await (await fetch(`${server.url}/runs/${id}`)).json()) as typeof run;
        if (run.status === 'succeeded' || run.status === 'failed') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(run.status).toBe('succeeded');
    } finally {
      await server.stop(); // SIGTERM: the runtime shuts down and flushes its spans
    }
    const traces = otlp.posts.filter((p) => p.path === '/v1/traces').map((p) => p.body as OtlpTraces);
    expect(traces.length).toBeGreaterThan(0);
    const resource = traces[0]!.resourceSpans[0]!.resource.attributes;
    expect(resource).toContainEqual({ key: 'service.name', value: { stringValue: 'ao-e2e' } });
    expect(resource).toContainEqual({ key: 'ao.node.id', value: { stringValue: 'otlp-node' } });
    const spans = traces.flatMap((t) => t.resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans))).filter((s) => s.traceId === run.traceId);
    const names = spans.map((s) => s.name);
    expect(names.filter((n) => n === 'run')).toHaveLength(1);
    expect(names.filter((n) => n === 'node')).toHaveLength(2); // classify, refund (escalate is skipped)
    expect(names).toContain('execute_tool stripe_refund');
    expect(names.some((n) => n.startsWith('chat '))).toBe(true);
    const root = spans.find((s) => s.name === 'run')!;
    for (const n of spans.filter((s) => s.name === 'node')) expect(n.parentSpanId).toBe(root.spanId);
    expect(otlp.posts.some((p) => p.path === '/v1/metrics')).toBe(true);
  }, 60_000);
});
