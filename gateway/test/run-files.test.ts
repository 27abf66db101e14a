import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunFile } from '@ao/runtime';
import type { RunFile } from '@ao/runtime';
import { postgresAvailable } from '@ao/runtime/testing';
import { authGateway, errorOf } from './auth-harness.js';
import type { AuthGateway } from './auth-harness.js';
import { testGateway } from './harness.js';
import type { TestGateway } from './harness.js';
import { FIXTURES_DIR } from './record-fixtures.js';

/**
 * Runs as files over HTTP: GET /runs/:id/export writes a finished run as one versioned document,
 * POST /runs/import loads it into another store, where it is shown, replayed from any step and
 * diffed like a run recorded there.
 */
const targetKind = (await postgresAvailable()) ? 'postgres' : 'pglite';

describe(`run files over HTTP (import into ${targetKind})`, () => {
  let source: AuthGateway;
  let target: TestGateway;
  let keyA: string;
  let keyB: string;
  let approved: string;
  let swarm: string;
  beforeAll(async () => {
    [source, target] = await Promise.all([authGateway(), testGateway(targetKind)]);
    [keyA, keyB] = await Promise.all([source.key('tenant-a'), source.key('tenant-b')]);
    approved = await source.start(keyA, { graph: 'triage-with-approval', input: { intent: 'refund', charge: 'ch_export' } });
    const engine = source.rt.engine;
    for (let r = await engine.getRun(approved); r?.status !== 'waiting'; r = await engine.getRun(approved)) await new Promise((res) => setTimeout(res, 20));
    await engine.signal(approved, { node: 'refund', payload: { approved: true, comment: 'ok' } });
    // Woken by the answer on the engine's next look: wait for its end.
    for (let r = await engine.getRun(approved); r?.status !== 'succeeded'; r = await engine.getRun(approved)) {
      expect(r?.status).toMatch(/^(waiting|running)$/);
      await new Promise((res) => setTimeout(res, 20));
    }
    swarm = await source.start(keyA, { graph: 'research-swarm', input: { topic: 'exports' } });
    expect((await engine.waitForRun(swarm, 30_000)).status).toBe('succeeded');
  }, 120_000);
  afterAll(async () => {
    await source?.close();
    await target?.close();
  });

  const exported = async (id: string, q = ''): Promise<RunFile> => {
    const res = await source.as(keyA, { url: `/runs/${id}/export${q}` });
    expect(res.statusCode, res.body).toBe(200);
    return parseRunFile(res.json());
  };
  const importInto = (file: unknown, q = '') => target.app.inject({ method: 'POST', url: `/runs/import${q}`, payload: file as object });

  it("GET /runs/:id/export gives the tenant's finished run as one ao-run document; others get 404, an unfinished run 409", async () => {
    const f = await exported(approved);
    expect(f).toMatchObject({
      format: 'ao-run',
      version: 1,
      run: { id: approved, graph: 'triage-with-approval', status: 'succeeded', input: { charge: 'ch_export' } },
    });
    // The answer to its wait is in its log.
    expect(f.events.find((e) => e.type === 'wait.resolved')?.payload).toMatchObject({ outcome: { kind: 'signal', payload: { approved: true } } });
    expect(f.checkpoints.length).toBeGreaterThan(1);
    expect((await exported(approved, '?checkpoints=false')).checkpoints).toEqual([]);
    expect(errorOf(await source.as(keyB, { url: `/runs/${approved}/export` }))).toEqual({ status: 404, code: 'AO_RUN_NOT_FOUND' });
    const waiting = await source.start(keyA, { graph: 'triage-with-approval', input: { intent: 'refund', charge: 'ch_wait' } });
    for (let r = await source.rt.engine.getRun(waiting); r?.status !== 'waiting'; r = await source.rt.engine.getRun(waiting))
      await new Promise((res) => setTimeout(res, 20));
    expect(errorOf(await source.as(keyA, { url: `/runs/${waiting}/export` }))).toEqual({ status: 409, code: 'AO_RUN_NOT_FINISHED' });
  });

  it('POST /runs/import loads it into another store: shown as it was, replayed from every step identically, diffed', async () => {
    for (const id of [approved, swarm]) {
      const f = await exported(id);
      const res = await importInto(f);
      expect(res.statusCode, res.body).toBe(201);
      expect(res.json()).toEqual({ id, graph: f.run.graph, status: 'succeeded', events: f.events.length, checkpoints: f.checkpoints.length });
      const shown = (await target.app.inject({ url: `/runs/${id}` })).json();
      expect(shown).toMatchObject({ id, status: 'succeeded', output: f.run.output, usage: f.run.usage, nodes: f.run.nodes });
      expect(await target.events(id)).toEqual(f.events);
      // Replayed from each of its steps in recorded mode: the same decisions, no model or tool called.
      const steps = (await target.app.inject({ url: `/runs/${id}/checkpoints` })).json().checkpoints as Array<{ step: number; seq: number }>;
      for (const { step, seq } of steps) {
        if (seq === f.events.length) break; // the step that ended the run: nothing after it
        const r = await target.app.inject({ method: 'POST', url: `/runs/${id}/replay`, payload: { fromStep: step, mode: 'recorded' } });
        expect(r.statusCode, r.body).toBe(202);
        const replay = await target.rt.engine.waitForRun(r.json().id, 30_000);
        expect(replay.replay?.divergence ?? null, `${f.run.graph} from step ${step}`).toBeNull();
        expect(replay.status).toBe('succeeded');
        const diff = (await target.app.inject({ url: `/runs/${id}/diff/${replay.id}` })).json();
        expect(diff, `${f.run.graph} from step ${step}`).toMatchObject({ identical: true, nodes: [] });
      }
    }
  }, 120_000);

  it('POST /runs/import?as=ID stores a renamed copy next to the original, which replays recorded from every step; a bad id is 400, a run that no longer reproduces 409', async () => {
    const f = await exported(approved);
    const copyId = randomUUID();
    const res = await importInto(f, `?as=${copyId}`);
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toEqual({ id: copyId, graph: 'triage-with-approval', status: 'succeeded', events: f.events.length, checkpoints: f.checkpoints.length });
    const events = await target.events(copyId);
    expect(events.map((e) => e.type)).toEqual(f.events.map((e) => e.type));
    expect(events.every((e) => e.runId === copyId && !f.events.some((o) => o.id === e.id))).toBe(true);
    const steps = (await target.app.inject({ url: `/runs/${copyId}/checkpoints` })).json().checkpoints as Array<{ step: number; seq: number }>;
    expect(steps.length).toBe(f.checkpoints.length);
    for (const { step, seq } of steps) {
      if (seq === f.events.length) break;
      const r = await target.app.inject({ method: 'POST', url: `/runs/${copyId}/replay`, payload: { fromStep: step, mode: 'recorded' } });
      expect(r.statusCode, r.body).toBe(202);
      const replay = await target.rt.engine.waitForRun(r.json().id, 30_000);
      expect(replay.replay?.divergence ?? null, `from step ${step}`).toBeNull();
      expect((await target.app.inject({ url: `/runs/${copyId}/diff/${replay.id}` })).json(), `from step ${step}`).toMatchObject({ identical: true, nodes: [] });
    }
    expect(errorOf(await importInto(f, '?as=copy-of-approved'))).toEqual({ status: 400, code: 'AO_VALIDATION' });
    const changed = { ...f, events: f.events.map((e) => (e.type === 'wait.resolved' ? { ...e, payload: { ...(e.payload as object), approved: false } } : e)) };
    const diverged = await importInto(changed, `?as=${randomUUID()}`);
    expect(errorOf(diverged)).toEqual({ status: 409, code: 'AO_REPLAY_DIVERGED' });
  }, 120_000);

  it('importing an id already stored is 409 AO_RUN_EXISTS and changes nothing; an imported fixture replays from step 0', async () => {
    const f = parseRunFile(readFileSync(join(FIXTURES_DIR, 'triage-refund.json'), 'utf8'));
    expect((await importInto(f)).statusCode).toBe(201);
    const again = await importInto({ ...f, run: { ...f.run, output: { other: true } } });
    expect(errorOf(again)).toEqual({ status: 409, code: 'AO_RUN_EXISTS' });
    expect((await target.app.inject({ url: `/runs/${f.run.id}` })).json()).toMatchObject({ output: f.run.output });
    const r = await target.app.inject({ method: 'POST', url: `/runs/${f.run.id}/replay`, payload: { fromStep: 0, mode: 'recorded' } });
    expect(r.statusCode, r.body).toBe(202);
    const replay = await target.rt.engine.waitForRun(r.json().id, 30_000);
    expect(replay.replay?.divergence ?? null).toBeNull();
    expect((await target.app.inject({ url: `/runs/${f.run.id}/diff/${replay.id}` })).json()).toMatchObject({ identical: true });
  }, 60_000);

  it('refuses a body that is not a run file with 400 and the field; a read-only key may export but not import', async () => {
    const f = parseRunFile(readFileSync(join(FIXTURES_DIR, 'triage-question.json'), 'utf8'));
    const bad = await importInto({ ...f, version: 2 });
    expect(errorOf(bad)).toEqual({ status: 400, code: 'AO_VALIDATION' });
    expect(bad.json().error.field).toMatch(/version/);
    expect(errorOf(await importInto({ ...f, events: f.events.slice(1) }))).toEqual({ status: 400, code: 'AO_VALIDATION' });
    // What no store can hold is refused at the door, not a 500.
    expect(errorOf(await importInto({ ...f, run: { ...f.run, input: { text: 'a\u0000b' } } }))).toEqual({ status: 400, code: 'AO_VALIDATION' });
    const ro = await source.key('tenant-a', { readOnly: true });
    expect((await source.as(ro, { url: `/runs/${swarm}/export` })).statusCode).toBe(200);
    expect(errorOf(await source.as(ro, { method: 'POST', url: '/runs/import', payload: f }))).toEqual({ status: 403, code: 'AO_KEY_READ_ONLY' });
    // Imported with a key: the run is that key's tenant's.
    const mine = await source.as(keyB, { method: 'POST', url: '/runs/import', payload: f });
    expect(mine.statusCode, mine.body).toBe(201);
    expect((await source.as(keyB, { url: `/runs/${f.run.id}` })).json()).toMatchObject({ tenant: 'tenant-b' });
    expect(errorOf(await source.as(keyA, { url: `/runs/${f.run.id}` }))).toEqual({ status: 404, code: 'AO_RUN_NOT_FOUND' });
  });

  it('the OpenAPI document describes both routes', async () => {
    type Op = { parameters?: Array<{ name: string }>; requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown> } }> } };
    const doc = (await target.app.inject({ url: '/docs/json' })).json() as { paths: Record<string, Record<string, Op>> };
    expect(doc.paths['/runs/{id}/export']?.get?.parameters?.map((p) => p.name)).toEqual(expect.arrayContaining(['id', 'checkpoints']));
    expect(doc.paths['/runs/import']?.post?.parameters?.map((p) => p.name)).toEqual(['as']);
    const body = doc.paths['/runs/import']?.post?.requestBody?.content['application/json']?.schema;
    expect(Object.keys(body?.properties ?? {})).toEqual(expect.arrayContaining(['format', 'version', 'run', 'events', 'checkpoints']));
  });
});
