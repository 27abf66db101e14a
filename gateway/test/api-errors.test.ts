import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '@ao/graphs';
import { HTTP_STATUS } from '../src/mod.js';
import { testGateway } from './harness.js';
import type { TestGateway } from './harness.js';

describe('bad input gets a 4xx with a stable code and the failing field, never a 500', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await testGateway('pglite');
  });
  afterAll(async () => gw.close());

  const post = (payload: string, headers: Record<string, string> = { 'content-type': 'application/json' }) =>
    gw.app.inject({ method: 'POST', url: '/runs', payload, headers });
  const expectError = (res: { statusCode: number; json: () => unknown }, status: number, code: string, field?: string) => {
    expect(res.statusCode).toBe(status);
    const err = (res.json() as { error: { code: string; message: string; field?: string } }).error;
    expect(err.code).toBe(code);
    expect(err.message.length).toBeGreaterThan(0);
    if (field !== undefined) expect(err.field).toBe(field);
  };

  it('malformed JSON is 400 AO_BAD_JSON', async () => {
    expectError(await post('{"graph": "triage",'), 400, 'AO_BAD_JSON', 'body');
    expectError(await post(''), 400, 'AO_BAD_JSON');
  });

  it('a body that fails its schema is 400 AO_VALIDATION naming the field', async () => {
    expectError(await post('{}'), 400, 'AO_VALIDATION', 'graph');
    expectError(await post('{"graph": 42}'), 400, 'AO_VALIDATION', 'graph');
    expectError(await post('[1,2]'), 400, 'AO_VALIDATION');
    expectError(await post('{"graph":"triage","extra":1}'), 400, 'AO_VALIDATION');
    expectError(await post('{"graph":"triage","budget":{"tokens":-5}}'), 400, 'AO_VALIDATION', 'budget.tokens');
    expectError(await post('{"graph":"triage","budget":{"perTool":{"stripe_refund":0}}}'), 400, 'AO_VALIDATION', 'budget.perTool.stripe_refund');
  });

  it('a body naming an unknown graph is 400 AO_GRAPH_NOT_FOUND', async () => {
    expectError(await post('{"graph":"nope"}'), 400, 'AO_GRAPH_NOT_FOUND', 'graph');
  });

  it('an input that fails the graph input schema is 400 naming the input field', async () => {
    expectError(await post('{"graph":"draft-critique","input":{"brief":""}}'), 400, 'AO_VALIDATION', 'input.brief');
    expectError(await post('{"graph":"draft-critique","input":{}}'), 400, 'AO_VALIDATION', 'input.brief');
  });

  it('a body that is not JSON is 415, and one over the size limit is 413', async () => {
    expectError(await post('graph=triage', { 'content-type': 'text/plain' }), 415, 'AO_UNSUPPORTED_MEDIA_TYPE');
    expectError(await post('graph=triage', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'AO_UNSUPPORTED_MEDIA_TYPE');
    const big = JSON.stringify({ graph: 'triage', input: { blob: 'x'.repeat(1_100_000) } });
    expectError(await post(big), 413, 'AO_PAYLOAD_TOO_LARGE');
  });

  it('an unknown run in the path is 404 AO_RUN_NOT_FOUND', async () => {
    expectError(await gw.app.inject({ url: '/runs/does-not-exist' }), 404, 'AO_RUN_NOT_FOUND', 'id');
    expectError(await gw.app.inject({ url: '/runs/does-not-exist/events' }), 404, 'AO_RUN_NOT_FOUND', 'id');
  });

  it('bad query parameters are 400 AO_VALIDATION naming the parameter', async () => {
    expectError(await gw.app.inject({ url: '/runs?status=bogus' }), 400, 'AO_VALIDATION', 'query.status');
    expectError(await gw.app.inject({ url: '/runs?limit=0' }), 400, 'AO_VALIDATION', 'query.limit');
    expectError(await gw.app.inject({ url: '/runs?limit=101' }), 400, 'AO_VALIDATION', 'query.limit');
    expectError(await gw.app.inject({ url: '/runs?cursor=%21%21' }), 400, 'AO_VALIDATION', 'query.cursor');
    expectError(await gw.app.inject({ url: '/runs?cursor=MA' }), 400, 'AO_VALIDATION', 'query.cursor');
    expectError(await gw.app.inject({ url: '/runs?bogus=1' }), 400, 'AO_VALIDATION');
    const run = (await post('{"graph":"triage","input":{"intent":"refund"}}')).json() as { id: string };
    expectError(await gw.app.inject({ url: `/runs/${run.id}/events?after=-1` }), 400, 'AO_VALIDATION', 'query.after');
    expectError(await gw.app.inject({ url: `/runs/${run.id}/events?limit=abc` }), 400, 'AO_VALIDATION', 'query.limit');
    await gw.rt.engine.waitForRun(run.id);
  });

  it('an unknown graph name is 404 and an unknown route is 404 AO_ROUTE_NOT_FOUND', async () => {
    expectError(await gw.app.inject({ url: '/graphs/nope' }), 404, 'AO_GRAPH_NOT_FOUND', 'name');
    expectError(await gw.app.inject({ url: '/nope' }), 404, 'AO_ROUTE_NOT_FOUND');
    expectError(await gw.app.inject({ method: 'DELETE', url: '/runs' }), 404, 'AO_ROUTE_NOT_FOUND');
  });

  it('GET /graphs describes nodes, edges (conditional or not) and budgets', async () => {
    const res = await gw.app.inject({ url: '/graphs/triage' });
    expect(res.statusCode).toBe(200);
    const g = res.json();
    expect(g.nodes.map((n: { id: string }) => n.id)).toEqual(['classify', 'refund', 'escalate']);
    expect(g.edges).toEqual([
      { from: 'classify', to: 'refund', conditional: true, back: false },
      { from: 'classify', to: 'escalate', conditional: true, back: false },
    ]);
    expect(g.budget).toEqual({ tokens: 8000, tools: 10, wallClockSec: 60, perTool: { stripe_refund: 1 } });
    const all = (await gw.app.inject({ url: '/graphs' })).json();
    expect(all.graphs.map((x: { name: string }) => x.name)).toEqual(['draft-critique', 'research-swarm', 'triage', 'triage-with-approval']);
    const loop = all.graphs[0].edges.find((e: { back: boolean }) => e.back);
    expect(loop).toMatchObject({ from: 'critique', to: 'draft', conditional: true });
  });

  it('GET /health answers with the node and its adapters', async () => {
    const res = await gw.app.inject({ url: '/health' });
    expect(res.json()).toMatchObject({ status: 'ok', node: 'test', store: 'pglite', bus: 'in-process', llm: 'offline' });
  });
});

describe('error catalogue', () => {
  it('maps every code to an HTTP status, and every code is well formed and described', () => {
    for (const [code, text] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^AO_[A-Z_]+$/);
      expect(text.length).toBeGreaterThan(10);
      expect(HTTP_STATUS[code as keyof typeof HTTP_STATUS], code).toBeGreaterThanOrEqual(400);
    }
    expect(Object.keys(HTTP_STATUS).sort()).toEqual(Object.keys(ERROR_CODES).sort());
    // A second process on an embedded data directory: a conflict with the one holding it.
    expect(HTTP_STATUS.AO_DATA_DIR_LOCKED).toBe(409);
  });
});

describe('input a store cannot hold is refused at the door', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await testGateway('pglite');
  });
  afterAll(async () => gw.close());
  const post = (payload: string) => gw.app.inject({ method: 'POST', url: '/runs', payload, headers: { 'content-type': 'application/json' } });
  const code = (res: { statusCode: number; json: () => unknown }) => [res.statusCode, (res.json() as { error: { code: string } }).error.code];

  it('a NUL character, an unpaired surrogate or a too deep input is 400, not a store error', async () => {
    expect(code(await post('{"graph":"triage","input":{"x":"a\\u0000b"}}'))).toEqual([400, 'AO_VALIDATION']);
    expect(code(await post('{"graph":"triage","input":{"x":"\\ud800"}}'))).toEqual([400, 'AO_VALIDATION']);
    expect(code(await post('{"graph":"triage","input":{"a\\u0000":1}}'))).toEqual([400, 'AO_VALIDATION']);
    const deep = `{"graph":"triage","input":${'['.repeat(200)}${']'.repeat(200)}}`;
    expect(code(await post(deep))).toEqual([400, 'AO_VALIDATION']);
  });

  it('a run id no run could have is 404, a bad query value 400, a malformed URL 400 with our shape', async () => {
    expect(code(await gw.app.inject({ url: '/runs/%00' }))).toEqual([404, 'AO_RUN_NOT_FOUND']);
    expect(code(await gw.app.inject({ url: '/runs/%00/events' }))).toEqual([404, 'AO_RUN_NOT_FOUND']);
    expect(code(await gw.app.inject({ url: '/runs?graph=a%00b' }))).toEqual([400, 'AO_VALIDATION']);
    expect(code(await gw.app.inject({ url: '/runs/x/events?after=3000000000' }))).toEqual([400, 'AO_VALIDATION']);
    expect(code(await gw.app.inject({ url: '/runs/%ED%A0%80' }))).toEqual([400, 'AO_VALIDATION']);
  });

  it('a budget override naming a tool the graph does not use is 400 naming it', async () => {
    const res = await post('{"graph":"triage","budget":{"perTool":{"web_search":3}}}');
    expect(code(res)).toEqual([400, 'AO_GRAPH_UNKNOWN_TOOL']);
    expect((res.json() as { error: { field: string } }).error.field).toBe('budget.perTool.web_search');
  });
});
