import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OfflineLlm } from '@ao/runtime';
import { drainAndClose } from '../src/mod.js';
import { connect } from './stream-client.js';
import { authGateway, errorOf } from './auth-harness.js';
import type { AuthGateway } from './auth-harness.js';

describe('Idempotency-Key on POST /runs', () => {
  let gw: AuthGateway;
  let a: string;
  let b: string;
  beforeAll(async () => {
    gw = await authGateway();
    a = await gw.key('acme');
    b = await gw.key('globex');
  });
  afterAll(async () => gw.close());
  const body = { graph: 'triage', input: { intent: 'refund' } };
  const post = (key: string, idem: string, payload: object = body) =>
    gw.as(key, { method: 'POST', url: '/runs', payload, headers: { 'idempotency-key': idem } });

  it('the same key returns the same run, and starts it once', async () => {
    const first = await post(a, 'order-1');
    expect(first.statusCode).toBe(202);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const again = await post(a, 'order-1');
    expect(again.statusCode).toBe(202);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json().id).toBe(first.json().id);
    await gw.rt.engine.waitForRun(first.json().id);
    expect((await post(a, 'order-1')).json()).toEqual({ id: first.json().id, status: 'succeeded' });
    const runs = (await gw.as(a, { url: '/runs?limit=100' })).json().runs as { id: string }[];
    expect(runs.filter((r) => r.id === first.json().id)).toHaveLength(1);
    expect(runs).toHaveLength(1);
  });

  it('concurrent requests with one key make one run', async () => {
    const answers = await Promise.all(Array.from({ length: 12 }, () => post(a, 'burst')));
    expect(answers.every((r) => r.statusCode === 202)).toBe(true);
    const ids = new Set(answers.map((r) => r.json().id));
    expect(ids.size).toBe(1);
    await gw.rt.engine.waitForRun([...ids][0]!);
  });

  it('the same key with another body is 422; keys are per tenant', async () => {
    const first = await post(a, 'order-2');
    expect(errorOf(await post(a, 'order-2', { graph: 'triage', input: { intent: 'other' } }))).toEqual({ status: 422, code: 'AO_IDEMPOTENCY_KEY_REUSED' });
    const other = await post(b, 'order-2');
    expect(other.statusCode).toBe(202);
    expect(other.json().id).not.toBe(first.json().id);
    await Promise.all([gw.rt.engine.waitForRun(first.json().id), gw.rt.engine.waitForRun(other.json().id)]);
  });

  it('a malformed key is 400 naming the header', async () => {
    const res = await post(a, 'has space');
    expect(errorOf(res)).toEqual({ status: 400, code: 'AO_VALIDATION' });
    expect(res.json().error.field).toBe('headers.idempotency-key');
    expect(errorOf(await post(a, 'x'.repeat(256)))).toEqual({ status: 400, code: 'AO_VALIDATION' });
  });
});

describe('limits: each refusal a 4xx with a code', () => {
  let gw: AuthGateway;
  let a: string;
  let b: string;
  beforeAll(async () => {
    gw = await authGateway({
      llm: new OfflineLlm({ latencyMs: 400 }),
      listen: true,
      app: { limits: { maxActiveRuns: 2, maxStreams: 1, rateLimitPerMin: 0, bodyLimit: 64 * 1024 } },
    });
    a = await gw.key('acme');
    b = await gw.key('globex');
  });
  afterAll(async () => gw.close());

  it('a tenant past its cap on active runs gets 429 AO_TOO_MANY_ACTIVE_RUNS; other tenants do not', async () => {
    const answers = await Promise.all(
      Array.from({ length: 5 }, () => gw.as(a, { method: 'POST', url: '/runs', payload: { graph: 'triage', input: { intent: 'refund' } } })),
    );
    const ok = answers.filter((r) => r.statusCode === 202);
    expect(ok).toHaveLength(2);
    const refused = answers.filter((r) => r.statusCode !== 202);
    for (const r of refused) expect(errorOf(r)).toEqual({ status: 429, code: 'AO_TOO_MANY_ACTIVE_RUNS' });
    expect(refused[0]!.json().error.message).toMatch(/most it may have is 2/);
    const other = await gw.start(b);
    for (const r of ok) await gw.rt.engine.waitForRun(r.json().id);
    await gw.rt.engine.waitForRun(other);
    // Finished runs no longer count.
    const later = await gw.start(a);
    await gw.rt.engine.waitForRun(later);
  });

  it('a body over the limit is 413 AO_PAYLOAD_TOO_LARGE', async () => {
    const big = { graph: 'triage', input: { blob: 'x'.repeat(70 * 1024) } };
    expect(errorOf(await gw.as(a, { method: 'POST', url: '/runs', payload: big }))).toEqual({ status: 413, code: 'AO_PAYLOAD_TOO_LARGE' });
  });

  it('a tenant past its cap on open streams gets 429 AO_TOO_MANY_STREAMS before the upgrade; a closed stream frees its slot', async () => {
    const first = await connect(`${gw.ws}/stream?access_token=${a}`);
    await first.until((f) => f.kind === 'ready');
    await expect(connect(`${gw.ws}/stream?access_token=${a}`)).rejects.toMatchObject({ status: 429, body: { error: { code: 'AO_TOO_MANY_STREAMS' } } });
    // Another tenant has its own slots.
    const theirs = await connect(`${gw.ws}/stream?access_token=${b}`);
    theirs.ws.close();
    first.ws.close();
    await first.closed;
    await new Promise((r) => setTimeout(r, 100));
    const again = await connect(`${gw.ws}/stream?access_token=${a}`);
    again.ws.close();
    await again.closed;
  });
});

describe('rate limit per key', () => {
  let gw: AuthGateway;
  beforeAll(async () => {
    gw = await authGateway({ app: { limits: { rateLimitPerMin: 5 } } });
  });
  afterAll(async () => gw.close());

  it('past the limit a key gets 429 AO_RATE_LIMITED with Retry-After; another key and /health are not limited', async () => {
    const a = await gw.key('acme');
    const b = await gw.key('acme');
    const answers = [];
    for (let i = 0; i < 7; i++) answers.push(await gw.as(a, { url: '/graphs' }));
    expect(answers.slice(0, 5).every((r) => r.statusCode === 200)).toBe(true);
    const limited = answers[6]!;
    expect(errorOf(limited)).toEqual({ status: 429, code: 'AO_RATE_LIMITED' });
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    expect((await gw.as(b, { url: '/graphs' })).statusCode).toBe(200);
    for (let i = 0; i < 10; i++) expect((await gw.as(a, { url: '/health' })).statusCode).toBe(200);
  });
});

describe("graceful shutdown (the gateway's part)", () => {
  it('stops taking runs at once (503 AO_SHUTTING_DOWN), lets hosted runs finish within the grace, keeps answering reads', async () => {
    const gw = await authGateway({ llm: new OfflineLlm({ latencyMs: 150 }) });
    try {
      const id = await gw.start(undefined);
      const closing = drainAndClose(gw.app, gw.rt.engine, 20_000);
      expect(errorOf(await gw.as(undefined, { method: 'POST', url: '/runs', payload: { graph: 'triage', input: { intent: 'refund' } } }))).toEqual({
        status: 503,
        code: 'AO_SHUTTING_DOWN',
      });
      const health = await gw.as(undefined, { url: '/health' });
      expect(health.statusCode).toBe(503);
      expect(health.json().status).toBe('draining');
      expect((await gw.as(undefined, { url: `/runs/${id}` })).statusCode).toBe(200);
      const r = await closing;
      expect(r).toMatchObject({ finished: 1, left: 0 });
      expect((await gw.rt.store.getRun(id))!.status).toBe('succeeded');
    } finally {
      await gw.rt.close();
    }
  });
});
