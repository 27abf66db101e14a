import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from './stream-client.js';
import { authGateway, errorOf } from './auth-harness.js';
import type { AuthGateway } from './auth-harness.js';

const notFound = { status: 404, code: 'AO_RUN_NOT_FOUND' };

describe('without any key the API is open (the quick start), and runs belong to tenant "default"', () => {
  let gw: AuthGateway;
  beforeAll(async () => {
    gw = await authGateway();
  });
  afterAll(async () => gw.close());

  it('starts, reads and lists runs with no Authorization header', async () => {
    const id = await gw.start(undefined);
    await gw.rt.engine.waitForRun(id);
    const run = await gw.as(undefined, { url: `/runs/${id}` });
    expect(run.statusCode).toBe(200);
    expect(run.json()).toMatchObject({ id, status: 'succeeded', tenant: 'default' });
    expect((await gw.as(undefined, { url: '/runs' })).json().runs.map((r: { id: string }) => r.id)).toContain(id);
  });

  it('a key that is presented is still checked: a wrong one is 401', async () => {
    expect(errorOf(await gw.as('ao_000000000000_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx', { url: '/runs' }))).toEqual({
      status: 401,
      code: 'AO_UNAUTHORIZED',
    });
  });
});

describe('AO_REQUIRE_AUTH: a key is needed even before any exists', () => {
  let gw: AuthGateway;
  beforeAll(async () => {
    gw = await authGateway({ app: { limits: { requireAuth: true } } });
  });
  afterAll(async () => gw.close());

  it('every API route is 401 without a key; /health and /docs are not', async () => {
    for (const url of ['/runs', '/graphs', '/graphs/triage', '/runs/x', '/runs/x/events', '/stream']) {
      expect(errorOf(await gw.as(undefined, { url })), url).toEqual({ status: 401, code: 'AO_UNAUTHORIZED' });
    }
    expect(errorOf(await gw.as(undefined, { method: 'POST', url: '/runs', payload: { graph: 'triage' } }))).toEqual({ status: 401, code: 'AO_UNAUTHORIZED' });
    const unauth = await gw.as(undefined, { url: '/runs' });
    expect(unauth.headers['www-authenticate']).toBe('Bearer');
    expect((await gw.as(undefined, { url: '/health' })).statusCode).toBe(200);
    expect((await gw.as(undefined, { url: '/docs/json' })).statusCode).toBe(200);
  });
});

describe("tenant boundaries: another tenant's run is a 404, exactly like no run at all", () => {
  let gw: AuthGateway;
  let a: string;
  let b: string;
  let aReader: string;
  let runA: string;
  let runB: string;
  let openRun: string;

  beforeAll(async () => {
    gw = await authGateway({ listen: true });
    // A run from before any key existed: tenant "default".
    openRun = await gw.start(undefined);
    await gw.rt.engine.waitForRun(openRun);
    a = await gw.key('acme');
    b = await gw.key('globex');
    aReader = await gw.key('acme', { readOnly: true });
    runA = await gw.start(a);
    runB = await gw.start(b, { graph: 'research-swarm', input: { topic: 'x' } });
    await Promise.all([gw.rt.engine.waitForRun(runA), gw.rt.engine.waitForRun(runB)]);
  });
  afterAll(async () => gw.close());

  it('once a key exists, a request without one is 401 (and /health still answers)', async () => {
    expect(errorOf(await gw.as(undefined, { url: '/runs' }))).toEqual({ status: 401, code: 'AO_UNAUTHORIZED' });
    expect(errorOf(await gw.as(undefined, { url: `/runs/${openRun}` }))).toEqual({ status: 401, code: 'AO_UNAUTHORIZED' });
    expect((await gw.as(undefined, { url: '/health' })).statusCode).toBe(200);
    expect(errorOf(await gw.as('not-a-key', { url: '/runs' }))).toEqual({ status: 401, code: 'AO_UNAUTHORIZED' });
    // X-API-Key works as well as a Bearer token.
    expect((await gw.app.inject({ url: `/runs/${runA}`, headers: { 'x-api-key': a } })).statusCode).toBe(200);
  });

  it('read: the owner sees its run, the other tenant gets the same 404 as for an unknown id', async () => {
    const mine = await gw.as(a, { url: `/runs/${runA}` });
    expect(mine.statusCode).toBe(200);
    expect(mine.json()).toMatchObject({ id: runA, tenant: 'acme' });
    const theirs = await gw.as(b, { url: `/runs/${runA}` });
    const none = await gw.as(b, { url: '/runs/00000000-0000-0000-0000-000000000000' });
    expect(errorOf(theirs)).toEqual(notFound);
    expect(errorOf(none)).toEqual(notFound);
    // Nothing in the answer tells the two apart but the id echoed back.
    expect(theirs.body.replace(runA, 'ID')).toBe(none.body.replace('00000000-0000-0000-0000-000000000000', 'ID'));
    // A run from before the keys belongs to "default": neither tenant sees it.
    expect(errorOf(await gw.as(a, { url: `/runs/${openRun}` }))).toEqual(notFound);
  });

  it('list: each tenant lists only its own runs, whatever the filters', async () => {
    const ids = async (key: string, q = '') => ((await gw.as(key, { url: `/runs${q}` })).json() as { runs: { id: string }[] }).runs.map((r) => r.id);
    expect(await ids(a)).toEqual([runA]);
    expect(await ids(b)).toEqual([runB]);
    expect(await ids(a, '?graph=research-swarm')).toEqual([]);
    expect(await ids(b, '?status=succeeded&limit=100')).toEqual([runB]);
  });

  it('events, usage, checkpoints and one checkpoint: 404 across tenants', async () => {
    for (const path of ['events', 'usage', 'checkpoints', 'checkpoints/1']) {
      expect((await gw.as(a, { url: `/runs/${runA}/${path}` })).statusCode, path).not.toBe(404);
      expect(errorOf(await gw.as(b, { url: `/runs/${runA}/${path}` })), path).toEqual(notFound);
      expect(errorOf(await gw.as(a, { url: `/runs/${runB}/${path}` })), path).toEqual(notFound);
    }
  });

  it('cancel: 404 across tenants (and the run is untouched)', async () => {
    expect(errorOf(await gw.as(b, { method: 'POST', url: `/runs/${runA}/cancel` }))).toEqual(notFound);
    expect(errorOf(await gw.as(a, { method: 'POST', url: `/runs/${runA}/cancel` }))).toEqual({ status: 409, code: 'AO_RUN_NOT_ACTIVE' });
  });

  it('replay: 404 across tenants; a replay belongs to the tenant of its original', async () => {
    expect(errorOf(await gw.as(b, { method: 'POST', url: `/runs/${runA}/replay`, payload: { fromStep: 0, mode: 'recorded' } }))).toEqual(notFound);
    const res = await gw.as(a, { method: 'POST', url: `/runs/${runA}/replay`, payload: { fromStep: 0, mode: 'recorded' } });
    expect(res.statusCode, res.body).toBe(202);
    const replay = res.json() as { id: string; tenant: string };
    expect(replay.tenant).toBe('acme');
    await gw.rt.engine.waitForRun(replay.id);
    expect(errorOf(await gw.as(b, { url: `/runs/${replay.id}` }))).toEqual(notFound);
    // diff: both runs must be the caller's; one of another tenant is a 404 naming it.
    expect((await gw.as(a, { url: `/runs/${runA}/diff/${replay.id}` })).json()).toMatchObject({ identical: true });
    const cross = await gw.as(a, { url: `/runs/${runA}/diff/${runB}` });
    expect(errorOf(cross)).toEqual(notFound);
    expect(cross.json().error.field).toBe('b');
    expect(errorOf(await gw.as(b, { url: `/runs/${runA}/diff/${runB}` }))).toEqual(notFound);
  });

  it("stream: another tenant's run is a 404 before the upgrade; the owner streams it (key in ?access_token)", async () => {
    await expect(connect(`${gw.ws}/runs/${runA}/stream?access_token=${b}`)).rejects.toMatchObject({
      status: 404,
      body: { error: { code: 'AO_RUN_NOT_FOUND' } },
    });
    await expect(connect(`${gw.ws}/runs/${runA}/stream`)).rejects.toMatchObject({ status: 401 });
    const mine = await connect(`${gw.ws}/runs/${runA}/stream?access_token=${a}`);
    await mine.until((f) => f.kind === 'end');
    expect(mine.envelopes().length).toBeGreaterThan(5);
    expect(mine.envelopes().every((e) => e.runId === runA)).toBe(true);
  });

  it("the status feed (GET /stream) carries only the caller's tenant's runs", async () => {
    const feedA = await connect(`${gw.ws}/stream?access_token=${a}`);
    const feedB = await connect(`${gw.ws}/stream?access_token=${b}`);
    await feedA.until((f) => f.kind === 'ready');
    await feedB.until((f) => f.kind === 'ready');
    const more = await gw.start(b);
    await gw.rt.engine.waitForRun(more);
    await feedB.until((f) => f.kind === 'run' && f.run.id === more && f.run.status === 'succeeded');
    const another = await gw.start(a);
    await feedA.until((f) => f.kind === 'run' && f.run.id === another && f.run.status === 'succeeded');
    expect(feedA.frames.filter((f) => f.kind === 'run').every((f) => f.kind === 'run' && f.run.tenant === 'acme')).toBe(true);
    expect(feedB.frames.filter((f) => f.kind === 'run').every((f) => f.kind === 'run' && f.run.tenant === 'globex')).toBe(true);
    feedA.ws.close();
    feedB.ws.close();
  });

  it("signal: another tenant's waiting run is a 404 and keeps waiting; its owner answers it; a read-only key may not (403)", async () => {
    const res = await gw.as(a, { method: 'POST', url: '/runs', payload: { graph: 'triage-with-approval', input: { intent: 'refund' } } });
    const waitingRun = (res.json() as { id: string }).id;
    await gw.rt.engine.waitForRun(waitingRun);
    const answer = { node: 'refund', payload: { approved: true } };
    expect(errorOf(await gw.as(b, { method: 'POST', url: `/runs/${waitingRun}/signal`, payload: answer }))).toEqual(notFound);
    expect(errorOf(await gw.as(aReader, { method: 'POST', url: `/runs/${waitingRun}/signal`, payload: answer }))).toEqual({
      status: 403,
      code: 'AO_KEY_READ_ONLY',
    });
    expect((await gw.rt.store.getRun(waitingRun))!.status).toBe('waiting');
    expect(await gw.rt.store.pendingSignals(waitingRun)).toEqual([]);
    const ok = await gw.as(a, { method: 'POST', url: `/runs/${waitingRun}/signal`, payload: answer });
    expect(ok.statusCode, ok.body).toBe(202);
    for (let i = 0; i < 400 && (await gw.rt.store.getRun(waitingRun))!.status !== 'succeeded'; i++) await new Promise((r) => setTimeout(r, 25));
    expect((await gw.rt.store.getRun(waitingRun))!.status).toBe('succeeded');
  });

  it("a read-only key reads its tenant's runs but may not start, cancel or replay (403)", async () => {
    expect((await gw.as(aReader, { url: `/runs/${runA}` })).statusCode).toBe(200);
    expect((await gw.as(aReader, { url: '/runs' })).json().runs.map((r: { id: string }) => r.id)).toContain(runA);
    const readOnly = { status: 403, code: 'AO_KEY_READ_ONLY' };
    expect(errorOf(await gw.as(aReader, { method: 'POST', url: '/runs', payload: { graph: 'triage' } }))).toEqual(readOnly);
    expect(errorOf(await gw.as(aReader, { method: 'POST', url: `/runs/${runA}/cancel` }))).toEqual(readOnly);
    expect(errorOf(await gw.as(aReader, { method: 'POST', url: `/runs/${runA}/replay`, payload: { fromStep: 0 } }))).toEqual(readOnly);
  });

  it('a revoked key is refused', async () => {
    const k = await gw.key('acme');
    expect((await gw.as(k, { url: '/runs' })).statusCode).toBe(200);
    await gw.rt.store.revokeApiKey(/^ao_([a-z0-9]{12})_/.exec(k)![1]!);
    gw.app.gate.auth.reset();
    expect(errorOf(await gw.as(k, { url: '/runs' }))).toEqual({ status: 401, code: 'AO_UNAUTHORIZED' });
  });

  it('keys are stored hashed: the store never holds a key itself', async () => {
    const keys = await gw.rt.store.listApiKeys();
    expect(keys.length).toBeGreaterThanOrEqual(3);
    const dump = JSON.stringify(keys);
    for (const k of [a, b, aReader]) expect(dump).not.toContain(k.slice('ao_000000000000_'.length));
  });
});
