import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prefersHtml } from '../src/http/pages.js';
import { authGateway, errorOf } from './auth-harness.js';
import { connect } from './stream-client.js';
import type { AuthGateway } from './auth-harness.js';

const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';

/** A run row with a chosen id (so two ids can share a prefix), finished, for the tenant given. */
async function addRun(gw: AuthGateway, id: string, o: { tenant?: string; graph?: string } = {}) {
  await gw.rt.store.createRun({
    id,
    graph: o.graph ?? 'triage',
    graphVersion: 'v',
    input: {},
    budget: {},
    nodes: {},
    traceId: null,
    owner: null,
    leaseMs: 0,
    ...(o.tenant ? { tenant: o.tenant } : {}),
  });
  await gw.rt.store.commit({ runId: id, events: [], patch: { status: 'succeeded', finishedAt: new Date().toISOString() } });
}

describe('run addresses: a unique id prefix of 8+ characters works on every /runs/:id route', () => {
  let gw: AuthGateway;
  let id: string;
  let p: string;
  beforeAll(async () => {
    gw = await authGateway({ listen: true });
    id = await gw.start(undefined);
    await gw.rt.engine.waitForRun(id);
    p = id.slice(0, 8);
  });
  afterAll(async () => gw.close());
  const get = (url: string) => gw.as(undefined, { url });

  it('reads a run, its usage, events and checkpoints by an 8-character prefix (and by an upper-case one)', async () => {
    expect((await get(`/runs/${p}`)).json()).toMatchObject({ id, status: 'succeeded' });
    expect((await get(`/runs/${id.slice(0, 13).toUpperCase()}`)).json()).toMatchObject({ id });
    expect((await get(`/runs/${p}/usage`)).statusCode).toBe(200);
    const events = (await get(`/runs/${p}/events?limit=5`)).json() as { events: Array<{ runId: string }> };
    expect(events.events.length).toBe(5);
    expect(events.events.every((e) => e.runId === id)).toBe(true);
    const { checkpoints } = (await get(`/runs/${p}/checkpoints`)).json() as { checkpoints: Array<{ runId: string; step: number }> };
    expect(checkpoints[0]!.runId).toBe(id);
    expect((await get(`/runs/${p}/checkpoints/${checkpoints[0]!.step}`)).json()).toMatchObject({ runId: id });
  });

  it('acts on a run by prefix: replay, diff, cancel and signal resolve it before they act', async () => {
    const replay = await gw.as(undefined, { method: 'POST', url: `/runs/${p}/replay`, payload: { fromStep: 0, mode: 'recorded' } });
    expect(replay.statusCode).toBe(202);
    const copy = replay.json() as { id: string; replay: { of: string } };
    expect(copy.replay.of).toBe(id);
    await gw.rt.engine.waitForRun(copy.id);
    expect((await get(`/runs/${p}/diff/${copy.id.slice(0, 8)}`)).json()).toMatchObject({ a: id, b: copy.id });
    // The run has ended: the answers are about that run, not "no such run".
    expect(errorOf(await gw.as(undefined, { method: 'POST', url: `/runs/${p}/cancel` }))).toEqual({ status: 409, code: 'AO_RUN_NOT_ACTIVE' });
    expect(
      errorOf(await gw.as(undefined, { method: 'POST', url: `/runs/${p}/signal`, payload: { node: 'refund', payload: { approved: true } } })),
    ).toMatchObject({ status: 409 });
    // The stream's checks resolve it too (a plain GET is then told to upgrade).
    expect(errorOf(await get(`/runs/${p}/stream`))).toEqual({ status: 426, code: 'AO_UPGRADE_REQUIRED' });
  });

  it('streams a run addressed by its prefix: the whole log of that run', async () => {
    const client = await connect(`${gw.ws}/runs/${p}/stream`);
    const log = (await get(`/runs/${id}`)).json() as { lastSeq: number };
    await client.until((f) => f.kind === 'envelope' && f.envelope.seq === log.lastSeq);
    client.ws.close();
    expect(client.envelopes().every((e) => e.runId === id)).toBe(true);
    expect(client.envelopes()).toHaveLength(log.lastSeq);
  });

  it('refuses a prefix shorter than 8 characters with AO_VALIDATION, and a name that is no id with AO_RUN_NOT_FOUND', async () => {
    const short = await get(`/runs/${id.slice(0, 7)}`);
    expect(errorOf(short)).toEqual({ status: 400, code: 'AO_VALIDATION' });
    expect(short.json().error).toMatchObject({ field: 'id', message: expect.stringContaining('at least 8 characters') });
    expect(errorOf(await get(`/runs/${id.slice(0, 7)}/events`))).toEqual({ status: 400, code: 'AO_VALIDATION' });
    expect(errorOf(await get('/runs/nope'))).toEqual({ status: 404, code: 'AO_RUN_NOT_FOUND' });
    expect(errorOf(await get('/runs/00000000'))).toEqual({ status: 404, code: 'AO_RUN_NOT_FOUND' });
  });

  it('answers an ambiguous prefix with 409 AO_RUN_ID_AMBIGUOUS listing the candidates', async () => {
    await addRun(gw, 'abcdef12-0000-4000-8000-000000000001');
    await addRun(gw, 'abcdef12-0000-4000-8000-000000000002');
    const res = await get('/runs/abcdef12/events');
    expect(errorOf(res)).toEqual({ status: 409, code: 'AO_RUN_ID_AMBIGUOUS' });
    expect(res.json().error).toMatchObject({
      field: 'id',
      candidates: expect.arrayContaining(['abcdef12-0000-4000-8000-000000000001', 'abcdef12-0000-4000-8000-000000000002']),
    });
    expect(res.json().error.message).toContain('abcdef12-0000-4000-8000-000000000001');
    expect((await get('/runs/abcdef12-0000-4000-8000-0000000000')).statusCode).toBe(409);
    expect((await get('/runs/abcdef12-0000-4000-8000-000000000002')).json()).toMatchObject({ id: 'abcdef12-0000-4000-8000-000000000002' });
  });

  it("looks for a prefix only among the caller's runs: another tenant's run neither matches nor makes a prefix ambiguous", async () => {
    await addRun(gw, 'fedcba98-0000-4000-8000-00000000000a', { tenant: 'other' });
    await addRun(gw, 'fedcba98-0000-4000-8000-00000000000b');
    expect((await get('/runs/fedcba98')).json()).toMatchObject({ id: 'fedcba98-0000-4000-8000-00000000000b' });
    const key = await gw.key('other');
    expect((await gw.as(key, { url: '/runs/fedcba98' })).json()).toMatchObject({ id: 'fedcba98-0000-4000-8000-00000000000a' });
  });
});

describe('searching runs: GET /runs?q=&graph=&status=&since=&until=', () => {
  let gw: AuthGateway;
  beforeAll(async () => {
    gw = await authGateway();
    await addRun(gw, '5ea4c400-0000-4000-8000-000000000001', { graph: 'triage' });
    await addRun(gw, '5ea4c400-0000-4000-8000-000000000002', { graph: 'draft-critique' });
    await addRun(gw, '5ea4c411-0000-4000-8000-000000000003', { graph: 'triage' });
  });
  afterAll(async () => gw.close());
  const ids = async (qs: string) => {
    const res = await gw.as(undefined, { url: `/runs?${qs}` });
    expect(res.statusCode, res.body).toBe(200);
    return (res.json() as { runs: Array<{ id: string }> }).runs.map((r) => r.id).sort();
  };

  it('finds runs by id prefix (any length, any case), combined with graph and status', async () => {
    expect(await ids('q=5ea4c4')).toHaveLength(3);
    expect(await ids('q=5EA4C400')).toEqual(['5ea4c400-0000-4000-8000-000000000001', '5ea4c400-0000-4000-8000-000000000002']);
    expect(await ids('q=5ea4c4&graph=triage')).toEqual(['5ea4c400-0000-4000-8000-000000000001', '5ea4c411-0000-4000-8000-000000000003']);
    expect(await ids('q=5ea4c4&status=succeeded&graph=draft-critique')).toEqual(['5ea4c400-0000-4000-8000-000000000002']);
    expect(await ids('q=5ea4c4&status=failed')).toEqual([]);
  });

  it('finds runs by creation time: since <= createdAt < until', async () => {
    const hour = 3_600_000;
    const at = (ms: number) => encodeURIComponent(new Date(Date.now() + ms).toISOString());
    expect(await ids(`q=5ea4c4&since=${at(-hour)}`)).toHaveLength(3);
    expect(await ids(`q=5ea4c4&since=${at(hour)}`)).toEqual([]);
    expect(await ids(`q=5ea4c4&until=${at(-hour)}`)).toEqual([]);
    expect(await ids(`q=5ea4c4&since=${at(-hour)}&until=${at(hour)}`)).toHaveLength(3);
  });

  it('refuses a search that is not an id prefix, and a time that is not ISO 8601, with AO_VALIDATION naming the field', async () => {
    const bad = async (qs: string) => {
      const res = await gw.as(undefined, { url: `/runs?${qs}` });
      return { ...errorOf(res), field: res.json().error.field as string };
    };
    expect(await bad('q=triage')).toEqual({ status: 400, code: 'AO_VALIDATION', field: 'query.q' });
    expect(await bad('since=yesterday')).toEqual({ status: 400, code: 'AO_VALIDATION', field: 'query.since' });
    expect(await bad('until=2026-12-04')).toEqual({ status: 400, code: 'AO_VALIDATION', field: 'query.until' });
  });
});

describe('/runs/<id> in a browser opens the inspector; API clients keep JSON', () => {
  let gw: AuthGateway;
  let dir: string;
  let id: string;
  const PAGE = '<!doctype html><title>inspector</title>';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ao-pages-'));
    await writeFile(join(dir, 'index.html'), PAGE);
    gw = await authGateway({ app: { inspectorDir: dir } });
    id = await gw.start(undefined);
    await gw.rt.engine.waitForRun(id);
  });
  afterAll(async () => {
    await gw.close();
    await rm(dir, { recursive: true, force: true });
  });
  const get = (url: string, accept?: string) => gw.as(undefined, { url, headers: accept ? { accept } : {} });

  it("answers a browser's Accept with the inspector page, for a full id and a prefix", async () => {
    for (const url of [`/runs/${id}`, `/runs/${id.slice(0, 8)}`, '/runs', '/graphs/triage']) {
      const res = await get(url, BROWSER);
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type'], url).toMatch(/^text\/html/);
      expect(res.headers.vary, url).toBe('Accept');
      expect(res.body, url).toBe(PAGE);
    }
  });

  it('answers JSON to curl, fetch and anything that does not put text/html first', async () => {
    for (const accept of [undefined, '*/*', 'application/json', 'application/json, text/html', 'text/html;q=0.5, application/json']) {
      const res = await get(`/runs/${id}`, accept);
      expect(res.statusCode, accept).toBe(200);
      expect(res.json(), accept).toMatchObject({ id });
      expect(res.headers.vary, accept).toBe('Accept');
    }
    // Not a page: the events of a run stay JSON in a browser too.
    expect((await get(`/runs/${id}/events`, BROWSER)).json()).toHaveProperty('events');
  });

  it('serves the page without a key when the API needs one (the page asks for its data with the key)', async () => {
    await gw.key('t');
    expect((await get(`/runs/${id}`, BROWSER)).body).toBe(PAGE);
    expect(errorOf(await get(`/runs/${id}`))).toEqual({ status: 401, code: 'AO_UNAUTHORIZED' });
  });
});

describe('prefersHtml', () => {
  it('is true only when text/html is named and weighs more than application/json', () => {
    expect(prefersHtml(BROWSER)).toBe(true);
    expect(prefersHtml('text/html')).toBe(true);
    expect(prefersHtml('application/json;q=0.9, text/html')).toBe(true);
    expect(prefersHtml(undefined)).toBe(false);
    expect(prefersHtml('')).toBe(false);
    expect(prefersHtml('*/*')).toBe(false);
    expect(prefersHtml('text/*')).toBe(false);
    expect(prefersHtml('application/json, text/html')).toBe(false);
    expect(prefersHtml('text/html;q=0, */*')).toBe(false);
    expect(prefersHtml('text/html;q=0.4, application/*;q=0.5')).toBe(false);
  });
});
