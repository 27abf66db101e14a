import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, OfflineLlm } from '@ao/runtime';
import type { Envelope } from '@ao/runtime';
import { buildApp, startRuntime } from '../src/mod.js';
import type { Runtime } from '../src/mod.js';
import { connect } from './stream-client.js';
import { gatedLlm } from './stream-fixtures.js';

/** A listening gateway (the streams are real WebSockets) over a fresh PGlite store. */
async function listeningGateway(o: Parameters<typeof startRuntime>[1] = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'ao-stream-'));
  const rt: Runtime = await startRuntime(loadConfig({ AO_DATA_DIR: dir, AO_NODE_ID: 'stream-test' }), o);
  const app: FastifyInstance = await buildApp(rt.engine, { inspectorDir: false });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as { port: number };
  return {
    app,
    rt,
    http: `http://127.0.0.1:${port}`,
    ws: `ws://127.0.0.1:${port}`,
    async start(body: object): Promise<string> {
      const res = await app.inject({ method: 'POST', url: '/runs', payload: body });
      expect(res.statusCode, res.body).toBe(202);
      return (res.json() as { id: string }).id;
    },
    async log(id: string): Promise<Envelope[]> {
      return rt.engine.listEvents(id, { limit: 1_000_000 });
    },
    async close() {
      await app.close();
      await rt.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
type Gateway = Awaited<ReturnType<typeof listeningGateway>>;

const seqs = (evs: Envelope[]) => evs.map((e) => e.seq);
const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

describe('GET /runs/:id/stream', () => {
  let gw: Gateway;
  const llm = gatedLlm(new OfflineLlm({ latencyMs: 5 }), 'summarise');
  beforeAll(async () => {
    gw = await listeningGateway({ llm });
  });
  afterAll(async () => gw?.close());

  it('a client that connects mid-run with after=seq receives exactly the missing envelopes, then the live ones, then the final status', async () => {
    const id = await gw.start({ graph: 'research-swarm', input: { topic: 'streams' } });
    await llm.reached; // the run is held inside summarise's model call: part of its log is written, the rest is not
    const before = await gw.log(id);
    const after = before.at(-5)!.seq;
    const client = await connect(`${gw.ws}/runs/${id}/stream?after=${after}`);
    // Everything stored after `after` arrives while the run is still held...
    await client.until((f) => f.kind === 'envelope' && f.envelope.seq === before.at(-1)!.seq);
    expect(seqs(client.envelopes())).toEqual(range(after + 1, before.at(-1)!.seq));
    expect((await gw.app.inject({ url: `/runs/${id}` })).json()).toMatchObject({ status: 'running' });
    // ...then the live tail, once the run goes on, and the run's final status.
    llm.open();
    const end = await client.until((f) => f.kind === 'end');
    const log = await gw.log(id);
    expect(end).toEqual({ kind: 'end', runId: id, status: 'succeeded', lastSeq: log.at(-1)!.seq });
    expect(client.envelopes()).toEqual(log.filter((e) => e.seq > after));
    expect(client.envelopes().at(-1)!.seq).toBeGreaterThan(before.at(-1)!.seq);
    expect((await client.closed).code).toBe(1000);
  });

  it('clients connecting at many moments of a live run each get the log after their seq with no gap and no duplicate', async () => {
    const fast = await listeningGateway({ llm: new OfflineLlm({ latencyMs: 2 }) });
    try {
      const id = await fast.start({ graph: 'research-swarm', input: { topic: 'races' } });
      const clients = [];
      // Connect while the run writes: each client starts from whatever the log holds at that moment.
      for (let i = 0; i < 12; i++) {
        const held = await fast.log(id);
        const after = held.length ? held[Math.floor((held.length * i) / 12)]!.seq - 1 : 0;
        clients.push({ after, c: await connect(`${fast.ws}/runs/${id}/stream?after=${Math.max(0, after)}`) });
      }
      for (const { c } of clients) await c.closed;
      const log = await fast.log(id);
      expect(log.at(-1)!.type).toBe('run.finished');
      for (const { after, c } of clients) {
        expect(seqs(c.envelopes())).toEqual(range(Math.max(0, after) + 1, log.at(-1)!.seq));
        expect(c.envelopes()).toEqual(log.filter((e) => e.seq > Math.max(0, after)));
        expect(c.frames.at(-1)).toMatchObject({ kind: 'end', status: 'succeeded' });
      }
    } finally {
      await fast.close();
    }
  });

  it('a stream of a run that already ended sends its log after `after` and the final status, then closes', async () => {
    const id = await gw.start({ graph: 'triage', input: { intent: 'refund' } });
    await gw.rt.engine.waitForRun(id);
    const log = await gw.log(id);
    const whole = await connect(`${gw.ws}/runs/${id}/stream`);
    expect((await whole.closed).code).toBe(1000);
    expect(whole.envelopes()).toEqual(log);
    const none = await connect(`${gw.ws}/runs/${id}/stream?after=${log.at(-1)!.seq}`);
    expect((await none.closed).code).toBe(1000);
    expect(none.frames).toEqual([{ kind: 'end', runId: id, status: 'succeeded', lastSeq: log.at(-1)!.seq }]);
  });

  it('refuses a bad request before the upgrade, with a stable code', async () => {
    const id = await gw.start({ graph: 'triage', input: { intent: 'refund' } });
    await gw.rt.engine.waitForRun(id);
    const last = (await gw.log(id)).at(-1)!.seq;
    const refused = async (path: string) => {
      const e = (await connect(`${gw.ws}${path}`).then(
        () => undefined,
        (err: Error & { status: number; body: unknown }) => err,
      ))!;
      expect(e, path).toBeDefined();
      return { status: e.status, body: e.body };
    };
    expect(await refused(`/runs/${id}/stream?after=abc`)).toEqual({
      status: 400,
      body: { error: expect.objectContaining({ code: 'AO_VALIDATION', field: 'query.after' }) },
    });
    expect(await refused(`/runs/${id}/stream?after=-1`)).toMatchObject({ status: 400, body: { error: { code: 'AO_VALIDATION', field: 'query.after' } } });
    expect(await refused(`/runs/${id}/stream?from=3`)).toMatchObject({ status: 400, body: { error: { code: 'AO_VALIDATION' } } });
    expect(await refused(`/runs/${id}/stream?after=${last + 1}`)).toMatchObject({
      status: 400,
      body: { error: { code: 'AO_STREAM_CURSOR_AHEAD', field: 'query.after' } },
    });
    expect(await refused(`/runs/nope/stream`)).toMatchObject({ status: 404, body: { error: { code: 'AO_RUN_NOT_FOUND' } } });
    expect(await refused(`/runs/%00/stream`)).toMatchObject({ status: 404, body: { error: { code: 'AO_RUN_NOT_FOUND' } } });
    // Without an upgrade the same routes say what they are.
    const plain = await gw.app.inject({ url: `/runs/${id}/stream` });
    expect(plain.statusCode).toBe(426);
    expect(plain.json()).toMatchObject({ error: { code: 'AO_UPGRADE_REQUIRED' } });
    expect((await gw.app.inject({ url: '/stream' })).json()).toMatchObject({ error: { code: 'AO_UPGRADE_REQUIRED' } });
    expect((await gw.app.inject({ url: `/runs/${id}/stream?after=x` })).json()).toMatchObject({ error: { code: 'AO_VALIDATION', field: 'query.after' } });
  });
});

describe('GET /stream', () => {
  let gw: Gateway;
  beforeAll(async () => {
    gw = await listeningGateway({ llm: new OfflineLlm({ latencyMs: 2 }) });
  });
  afterAll(async () => gw?.close());

  it('reports the status changes of every run, each run in order, ending with its final status', async () => {
    const feed = await connect(`${gw.ws}/stream`);
    await feed.until((f) => f.kind === 'ready');
    const a = await gw.start({ graph: 'triage', input: { intent: 'refund' } });
    const b = await gw.start({ graph: 'research-swarm', input: { topic: 'feeds' } });
    const done = (id: string) => feed.until((f) => f.kind === 'run' && f.run.id === id && f.run.status === 'succeeded');
    await Promise.all([done(a), done(b)]);
    for (const id of [a, b]) {
      const mine = feed.frames.flatMap((f) => (f.kind === 'run' && f.run.id === id ? [f] : []));
      // The first change is run.started; on a busy machine its row may be read only after the run went further.
      expect(mine[0]!.cause).toBe('run.started');
      const lastSeqs = mine.map((f) => f.run.lastSeq);
      expect(lastSeqs).toEqual([...lastSeqs].sort((x, y) => x - y));
      const final = (await gw.app.inject({ url: `/runs/${id}` })).json() as { usage: unknown; lastSeq: number };
      expect(mine.at(-1)!.run).toMatchObject({ status: 'succeeded', usage: final.usage, lastSeq: final.lastSeq });
    }
    feed.ws.close();
    await feed.closed;
  });
});
