import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { defineTool, loadConfig } from '@ao/runtime';
import type { LlmPort, LlmRequest, LlmResponse } from '@ao/runtime';
import { createTestDatabase, postgresAvailable } from '@ao/runtime/testing';
import { buildApp, startRuntime } from '../src/mod.js';
import { connect } from './stream-client.js';

const pgUp = await postgresAvailable();
const TOKEN = `tok_${randomBytes(16).toString('hex')}`;
const HANDLE = /secret:[0-9a-f]{32}/;
const received: Array<{ runId: string; token: string }> = [];

const tools = [
  defineTool({
    name: 'get_token',
    description: 'Issue a token.',
    effect: 'idempotent',
    input: z.object({}),
    output: z.object({ token: z.string().meta({ secret: true }) }),
    handler: async () => ({ token: TOKEN }),
  }),
  defineTool({
    name: 'use_token',
    description: 'Use a token.',
    effect: 'idempotent',
    input: z.object({ token: z.string().meta({ secret: true }) }),
    async handler({ token }, ctx) {
      received.push({ runId: ctx.runId, token });
      return { ok: token === TOKEN };
    },
  }),
];

/** One node: get a token, pass its handle to use_token, answer. */
const g = graph('gw-secret').node('agent', { agent: 'pipeline', tools: ['get_token', 'use_token'] }) as GraphBuilder<unknown>;

const reply = (content: string, call?: { name: string; arguments: Record<string, unknown> }): LlmResponse => ({
  model: 'scripted',
  message: { content, toolCalls: call ? [{ id: 'c1', ...call }] : [] },
  usage: { inputTokens: 10, outputTokens: 5 },
  finishReason: call ? 'tool_calls' : 'stop',
});
const llm: LlmPort = {
  provider: 'scripted',
  async complete(req: LlmRequest) {
    const results = req.messages.filter((m) => m.role === 'tool').map((m) => m.content);
    if (!results.length) return reply('', { name: 'get_token', arguments: {} });
    if (results.length === 1) return reply('', { name: 'use_token', arguments: { token: HANDLE.exec(results[0]!)?.[0] ?? 'none' } });
    return reply(`done: ${results[1]}`);
  },
};

describe.each([
  ['pglite', true, undefined],
  ['postgres with AO_SECRET_KEY', pgUp, randomBytes(32).toString('base64')],
  ['postgres without AO_SECRET_KEY', pgUp, undefined],
] as const)('secrets through the API (%s)', (name, available, key) => {
  let dir: string;
  let drop: (() => Promise<void>) | undefined;
  let gw: { app: Awaited<ReturnType<typeof buildApp>>; rt: Awaited<ReturnType<typeof startRuntime>> };
  let ws: string;
  beforeAll(async () => {
    if (!available) return;
    dir = await mkdtemp(join(tmpdir(), 'ao-secrets-'));
    const db = name.startsWith('postgres') ? await createTestDatabase() : undefined;
    drop = db?.drop;
    const rt = await startRuntime(
      loadConfig({ AO_DATA_DIR: dir, AO_NODE_ID: 'secrets', ...(db ? { DATABASE_URL: db.url } : {}), ...(key ? { AO_SECRET_KEY: key } : {}) }),
      { llm, graphs: [g], tools },
    );
    const app = await buildApp(rt.engine, { inspectorDir: false });
    await app.listen({ port: 0, host: '127.0.0.1' });
    ws = `ws://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    gw = { app, rt };
  });
  afterAll(async () => {
    await gw?.app.close();
    await gw?.rt.close();
    await drop?.();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it.runIf(available)('no API answer and no stream frame carries the secret; the tool that needs it gets it (or, without a key, nothing is kept)', async () => {
    const res = await gw.app.inject({ method: 'POST', url: '/runs', payload: { graph: 'gw-secret', input: {} } });
    expect(res.statusCode, res.body).toBe(202);
    const id = (res.json() as { id: string }).id;
    const stream = await connect(`${ws}/runs/${id}/stream`);
    await gw.rt.engine.waitForRun(id, 30_000);
    await stream.closed;
    const bodies = await Promise.all(
      [`/runs/${id}`, `/runs/${id}/events?limit=1000`, `/runs/${id}/checkpoints`, `/runs?limit=50`].map(async (url) => (await gw.app.inject({ url })).body),
    );
    for (const b of [...bodies, JSON.stringify(stream.frames)]) expect(b).not.toContain(TOKEN);
    expect(JSON.parse(bodies[0]!)).toMatchObject({ status: 'succeeded' });
    const result = stream.envelopes().find((e) => e.type === 'tool.result' && (e.payload as { name: string }).name === 'get_token')!.payload as {
      result: { token: string };
    };
    if (name === 'postgres without AO_SECRET_KEY') {
      expect(result.result.token).toBe('[secret not kept: AO_SECRET_KEY_MISSING]');
      expect(received.filter((r) => r.runId === id)).toEqual([{ runId: id, token: 'none' }]);
    } else {
      expect(result.result.token).toMatch(HANDLE);
      expect(received.filter((r) => r.runId === id)).toEqual([{ runId: id, token: TOKEN }]);
    }
  });

  it.runIf(available && name === 'pglite')('the embedded store keeps its generated key beside its data, readable by the owner only', async () => {
    expect((await stat(join(dir, 'secret.key'))).mode & 0o777).toBe(0o600);
  });
});
