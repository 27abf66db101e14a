import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { defineTool } from '@ao/runtime';
import type { Envelope, LlmPort, LlmRequest, LlmResponse, Store } from '@ao/runtime';
import { inMemoryTelemetry, postgresAvailable } from '@ao/runtime/testing';
import type { Engine } from '../src/mod.js';
import { allEvents, gate, openStore, startNode, toolsWith, until } from './harness.js';

const pgUp = await postgresAvailable();

/** What the token tool returns and the PIN the model writes literally: neither may reach the log. */
const TOKEN = `tok_${randomBytes(16).toString('hex')}`;
const PIN = `pin-${randomBytes(6).toString('hex')}`;
const HANDLE = /secret:[0-9a-f]{32}/;

/** Every call of `use_token`: which run, and what the tool actually received. */
const received: Array<{ runId: string; token: string; pin: string | undefined }> = [];

const getToken = defineTool({
  name: 'get_token',
  description: 'Issue an API token for a scope.',
  effect: 'idempotent',
  input: z.object({ scope: z.string() }),
  output: z.object({ token: z.string().meta({ secret: true }), expiresIn: z.number() }),
  async handler() {
    return { token: TOKEN, expiresIn: 3600 };
  },
});

const useToken = defineTool({
  name: 'use_token',
  description: 'Spend with a token.',
  effect: 'idempotent',
  input: z.object({ token: z.string().meta({ secret: true }), pin: z.string().meta({ secret: true }).optional(), amount: z.number() }),
  async handler({ token, pin, amount }, ctx) {
    received.push({ runId: ctx.runId, token, pin });
    return { ok: token === TOKEN, amount };
  },
});

const echo = defineTool({
  name: 'echo',
  description: 'Echo a text.',
  effect: 'pure',
  input: z.object({ text: z.string() }),
  async handler({ text }) {
    return { text };
  },
});

/**
 * `issue` gets a token (the model sees only its handle and repeats it in its answer); `spend`
 * finds the handle in its upstream output and passes it to `use_token`, with a PIN written
 * literally; `leak` tries to pass the handle to a tool argument that is not secret.
 */
const g = graph('secret-flow')
  .node('issue', { agent: 'pipeline', tools: ['get_token'] })
  .node('spend', { agent: 'pipeline', tools: ['use_token'] })
  .node('leak', { agent: 'pipeline', tools: ['echo'] })
  .edge('issue', 'spend')
  .edge('spend', 'leak') as GraphBuilder<unknown>;

const reply = (content: string, calls: Array<{ name: string; arguments: Record<string, unknown> }> = []): LlmResponse => ({
  model: 'scripted',
  message: { content, toolCalls: calls.map((c, i) => ({ id: `call-${i}`, ...c })) },
  usage: { inputTokens: 10, outputTokens: 5 },
  finishReason: calls.length ? 'tool_calls' : 'stop',
});

/** A deterministic model for the graph above; `hold` keeps `spend`'s first answer until it settles. */
function scriptedLlm(hold?: Promise<void>): LlmPort & { requests: LlmRequest[] } {
  const llm = {
    provider: 'scripted',
    requests: [] as LlmRequest[],
    async complete(req: LlmRequest, signal?: AbortSignal): Promise<LlmResponse> {
      llm.requests.push(req);
      const user = req.messages.find((m) => m.role === 'user')?.content ?? '';
      const node = /^Node: (\S+)/.exec(user)?.[1];
      const results = req.messages.filter((m) => m.role === 'tool').map((m) => m.content);
      if (node === 'issue') {
        if (!results.length) return reply('', [{ name: 'get_token', arguments: { scope: 'payments' } }]);
        return reply(`issued ${HANDLE.exec(results[0]!)?.[0] ?? 'nothing'}`);
      }
      const handle = HANDLE.exec(user)?.[0] ?? 'none';
      if (node === 'spend') {
        if (hold && !results.length) {
          await new Promise<void>((resolve, reject) => {
            signal?.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })), { once: true });
            void hold.then(resolve);
          });
        }
        if (!results.length) return reply('', [{ name: 'use_token', arguments: { token: handle, pin: PIN, amount: 5 } }]);
        return reply(`spent with ${handle}: ${results[0]}`);
      }
      if (!results.length) return reply('', [{ name: 'echo', arguments: { text: `token ${handle}` } }]);
      return reply(`echo: ${results[0]}`);
    },
  };
  return llm;
}

const text = (x: unknown) => JSON.stringify(x);
const handleOf = (evs: Envelope[]) =>
  (evs.find((e) => e.type === 'tool.result' && (e.payload as { name: string }).name === 'get_token')!.payload as { result: { token: string } }).result.token;
const payloadsOf = (evs: Envelope[], type: string) => evs.filter((e) => e.type === type).map((e) => e.payload as Record<string, unknown>);

describe.each([
  ['pglite', true],
  ['postgres', pgUp],
] as const)('secret tool results and arguments (%s)', (kind, available) => {
  let store: Store;
  let drop: (() => Promise<void>) | undefined;
  let tel: ReturnType<typeof inMemoryTelemetry>;
  const engines: Engine[] = [];
  const key = randomBytes(32);
  const tools = toolsWith(getToken, useToken, echo);
  const node = async (id: string, llm: LlmPort, secretKey: Uint8Array | null = key) => {
    const e = await startNode({ store, nodeId: id, graphs: [g], tools, llm, ...(secretKey ? { secretKey } : {}) });
    engines.push(e);
    return e;
  };
  let engine: Engine;
  let original: Awaited<ReturnType<Engine['waitForRun']>>;

  beforeAll(async () => {
    if (!available) return;
    process.env.AO_OTEL_CAPTURE_CONTENT = '1';
    tel = inMemoryTelemetry();
    ({ store, drop } = await openStore(kind));
    engine = await node(`${kind}-main`, scriptedLlm());
    original = await engine.waitForRun((await engine.startRun({ graph: 'secret-flow', input: {} })).id);
  });
  afterAll(async () => {
    delete process.env.AO_OTEL_CAPTURE_CONTENT;
    for (const e of engines) await e.shutdown();
    await store?.close();
    await drop?.();
    tel?.reset();
  });

  it.runIf(available)('the second tool receives the real token while no event, model request, span or node output holds it', async () => {
    expect(original.status).toBe('succeeded');
    expect(received.filter((r) => r.runId === original.id)).toEqual([{ runId: original.id, token: TOKEN, pin: PIN }]);
    const evs = await allEvents(store, original.id);
    expect(text(evs)).not.toContain(TOKEN);
    expect(text(original)).not.toContain(TOKEN);
    // The model saw the handle, never the value: it did not reach the provider.
    const [result] = payloadsOf(evs, 'tool.result').filter((p) => p.name === 'get_token');
    expect(result!.result).toEqual({ token: expect.stringMatching(HANDLE), expiresIn: 3600 });
    for (const req of payloadsOf(evs, 'llm.request')) expect(text(req)).not.toContain(TOKEN);
    const spans = tel.spans.getFinishedSpans().filter((s) => s.attributes['ao.run.id'] === original.id);
    expect(spans.some((s) => s.attributes['gen_ai.tool.call.result'] !== undefined)).toBe(true);
    expect(text(spans.map((s) => ({ a: s.attributes, e: s.events })))).not.toContain(TOKEN);
  });

  it.runIf(available)(
    'a secret argument the model wrote literally is redacted in tool.call, in the node output and in the span; the handle stays',
    async () => {
      const evs = await allEvents(store, original.id);
      const [call] = payloadsOf(evs, 'tool.call').filter((p) => p.name === 'use_token');
      const handle = (payloadsOf(evs, 'tool.result').find((p) => p.name === 'get_token')!.result as { token: string }).token;
      expect(call!.args).toEqual({ token: handle, pin: '[redacted]', amount: 5 });
      const spend = payloadsOf(evs, 'node.completed').find((p) => p.node === 'spend')!;
      expect(text(spend)).not.toContain(PIN);
      const span = tel.spans.getFinishedSpans().find((s) => s.attributes['ao.run.id'] === original.id && s.name === 'execute_tool use_token')!;
      expect(JSON.parse(String(span.attributes['gen_ai.tool.call.arguments']))).toEqual({ token: handle, pin: '[redacted]', amount: 5 });
    },
  );

  it.runIf(available)(
    'a handle passed in an argument that is not marked secret is refused (AO_SECRET_NOT_ALLOWED) and the tool is not called with it',
    async () => {
      const evs = await allEvents(store, original.id);
      const [echoed] = payloadsOf(evs, 'tool.result').filter((p) => p.name === 'echo');
      expect(echoed).toMatchObject({ ok: false, error: { code: 'AO_SECRET_NOT_ALLOWED', details: { field: 'text' } } });
    },
  );

  it.runIf(available)('the stored row is ciphertext under the run and handle, not the token', async () => {
    const handle = (payloadsOf(await allEvents(store, original.id), 'tool.result').find((p) => p.name === 'get_token')!.result as { token: string }).token;
    const rows = await store.getSecrets([original.id], [handle]);
    expect(rows).toHaveLength(1);
    expect(text(rows)).not.toContain(TOKEN);
    expect(Buffer.from(rows[0]!.data, 'base64').toString('latin1')).not.toContain(TOKEN);
  });

  it.runIf(available)('after a handover mid-run the resumed node still hands the real token to the tool', async () => {
    const hold = gate();
    const a = await node(`${kind}-a`, scriptedLlm(hold.promise));
    const run = await a.startRun({ graph: 'secret-flow', input: {} });
    await until(async () => (await allEvents(store, run.id)).find((e) => e.type === 'llm.request' && e.from === 'supervisor/spend'), "spend's model call");
    await a.shutdown();
    const b = await node(`${kind}-b`, scriptedLlm());
    const done = await b.waitForRun(run.id);
    expect(done.status).toBe('succeeded');
    expect(received.filter((r) => r.runId === run.id)).toEqual([{ runId: run.id, token: TOKEN, pin: PIN }]);
    expect(text(await allEvents(store, run.id))).not.toContain(TOKEN);
  });

  it.runIf(available)(
    "a recorded replay reproduces the run without divergence and without calling the tool; a live replay resolves the original's handle",
    async () => {
      const step = (await store.listCheckpoints(original.id)).find((c) => c.node === 'issue')!.step;
      const before = received.length;
      const rid = (await engine.replay(original.id, { fromStep: step, mode: 'recorded' })).id;
      const recorded = await engine.waitForRun(rid);
      expect(recorded.status).toBe('succeeded');
      expect(recorded.replay?.divergence ?? null).toBeNull();
      expect(received.length).toBe(before);
      expect(text(await allEvents(store, recorded.id))).not.toContain(TOKEN);

      const lid = (await engine.replay(original.id, { fromStep: step, mode: 'live' })).id;
      const live = await engine.waitForRun(lid);
      expect(live.status).toBe('succeeded');
      expect(received.filter((r) => r.runId === live.id)).toEqual([{ runId: live.id, token: TOKEN, pin: PIN }]);
      // The live replay holds no secret of its own: the tool got the value from its original's vault.
      expect(await store.getSecrets([live.id], [handleOf(await allEvents(store, original.id))])).toEqual([]);
      expect(text(await allEvents(store, live.id))).not.toContain(TOKEN);
    },
  );

  it.runIf(available)('a node with another key cannot open the secret: the call fails AO_SECRET_UNREADABLE, never with a wrong value', async () => {
    const step = (await store.listCheckpoints(original.id)).find((c) => c.node === 'issue')!.step;
    const other = await node(`${kind}-other-key`, scriptedLlm(), randomBytes(32));
    const replay = await other.waitForRun((await other.replay(original.id, { fromStep: step, mode: 'live' })).id);
    expect(replay.status).toBe('failed');
    expect(text(replay.error)).toContain('AO_SECRET_UNREADABLE');
    expect(received.filter((r) => r.runId === replay.id)).toEqual([]);
  });

  it.runIf(available)('without a key the secret part of a result is dropped, not stored, and the log says why', async () => {
    const keyless = await node(`${kind}-keyless`, scriptedLlm(), null);
    const run = await keyless.waitForRun((await keyless.startRun({ graph: 'secret-flow', input: {} })).id);
    const evs = await allEvents(store, run.id);
    expect(text(evs)).not.toContain(TOKEN);
    const [result] = payloadsOf(evs, 'tool.result').filter((p) => p.name === 'get_token');
    expect(result!.result).toEqual({ token: '[secret not kept: AO_SECRET_KEY_MISSING]', expiresIn: 3600 });
    // The model had no handle to pass on: the tool got the model's placeholder, not a secret.
    expect(received.filter((r) => r.runId === run.id).map((r) => r.token)).toEqual(['none']);
  });
});
