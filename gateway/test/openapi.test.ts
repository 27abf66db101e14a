import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authGateway, errorOf } from './auth-harness.js';
import type { AuthGateway } from './auth-harness.js';

interface OpenApi {
  openapi: string;
  paths: Record<
    string,
    Record<
      string,
      {
        requestBody?: { content: Record<string, { schema: Record<string, unknown> }> };
        parameters?: { in: string; name: string; schema: Record<string, unknown> }[];
        security?: unknown[];
      }
    >
  >;
  components: { securitySchemes: Record<string, unknown> };
}

describe('OpenAPI at /docs: the API documented from the schemas it enforces', () => {
  let gw: AuthGateway;
  let doc: OpenApi;
  beforeAll(async () => {
    gw = await authGateway();
    const res = await gw.app.inject({ url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    doc = res.json();
  });
  afterAll(async () => gw.close());

  it('documents every route of the API, with the bearer key as its security scheme; the UI is at /docs', async () => {
    expect(doc.openapi).toMatch(/^3\./);
    for (const [path, method] of [
      ['/runs', 'post'],
      ['/runs', 'get'],
      ['/runs/{id}', 'get'],
      ['/runs/{id}/events', 'get'],
      ['/runs/{id}/usage', 'get'],
      ['/runs/{id}/cancel', 'post'],
      ['/runs/{id}/checkpoints', 'get'],
      ['/runs/{id}/checkpoints/{step}', 'get'],
      ['/runs/{id}/replay', 'post'],
      ['/runs/{a}/diff/{b}', 'get'],
      ['/runs/{id}/stream', 'get'],
      ['/stream', 'get'],
      ['/graphs', 'get'],
      ['/graphs/{name}', 'get'],
      ['/health', 'get'],
    ] as const) {
      expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
    }
    expect(doc.components.securitySchemes.apiKey).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.paths['/health']!.get!.security).toEqual([]);
    expect((await gw.app.inject({ url: '/docs' })).statusCode).toBe(200);
  });

  it('what the document says of POST /runs is what the route enforces', async () => {
    const op = doc.paths['/runs']!.post!;
    const schema = op.requestBody!.content['application/json']!.schema as {
      required: string[];
      additionalProperties: boolean;
      properties: Record<string, { maxLength?: number }>;
    };
    expect(schema.required).toEqual(['graph']);
    expect(schema.additionalProperties).toBe(false);
    expect(schema.properties.graph!.maxLength).toBe(128);
    const header = op.parameters!.find((p) => p.in === 'header' && p.name === 'idempotency-key')!;
    expect(header.schema).toMatchObject({ maxLength: 255 });
    const post = (payload: object, headers: Record<string, string> = {}) => gw.app.inject({ method: 'POST', url: '/runs', payload, headers });
    expect(errorOf(await post({}))).toEqual({ status: 400, code: 'AO_VALIDATION' });
    expect(errorOf(await post({ graph: 'triage', extra: 1 }))).toEqual({ status: 400, code: 'AO_VALIDATION' });
    expect(errorOf(await post({ graph: 'x'.repeat(129) }))).toEqual({ status: 400, code: 'AO_VALIDATION' });
    expect(errorOf(await post({ graph: 'triage' }, { 'idempotency-key': 'k'.repeat(256) }))).toEqual({ status: 400, code: 'AO_VALIDATION' });
    const ok = await post({ graph: 'triage', input: { intent: 'refund' } }, { 'idempotency-key': 'k'.repeat(255) });
    expect(ok.statusCode).toBe(202);
    await gw.rt.engine.waitForRun(ok.json().id);
  });

  it('documents GET /graphs/{name} as a graph with its input JSON Schema, or a 404 with a code', async () => {
    const responses = (
      doc.paths['/graphs/{name}']!.get as unknown as {
        responses: Record<string, { content: Record<string, { schema: { properties: Record<string, { description?: string; properties?: object }> } }> }>;
      }
    ).responses;
    const ok = responses['200']!.content['application/json']!.schema;
    expect(ok.properties.inputSchema!.description).toMatch(/JSON Schema/);
    expect(Object.keys(ok.properties)).toEqual(expect.arrayContaining(['nodes', 'edges', 'budget', 'version', 'inputSchema']));
    expect(responses['404']!.content['application/json']!.schema.properties.error!.properties).toHaveProperty('code');
    const res = await gw.app.inject({ url: '/graphs/draft-critique' });
    expect(res.json().inputSchema.required).toEqual(['brief']);
  });

  it('the query limits documented are the pagination caps enforced', async () => {
    const limit = (path: string) => doc.paths[path]!.get!.parameters!.find((p) => p.in === 'query' && p.name === 'limit')!.schema;
    expect(limit('/runs')).toMatchObject({ maximum: 100 });
    expect(limit('/runs/{id}/events')).toMatchObject({ maximum: 1000 });
    expect(errorOf(await gw.app.inject({ url: '/runs?limit=101' }))).toEqual({ status: 400, code: 'AO_VALIDATION' });
    expect(errorOf(await gw.app.inject({ url: '/runs/x/events?limit=1001' }))).toEqual({ status: 400, code: 'AO_VALIDATION' });
  });
});
