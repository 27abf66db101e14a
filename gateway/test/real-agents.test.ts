import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graph } from '@ao/graphs';
import { loadConfig } from '@ao/runtime';
import type { DeltaEvent, Envelope } from '@ao/runtime';
import { FakeProvider } from '@ao/runtime/fake-llm';
import type { FakeReply, FakeRequest } from '@ao/runtime/fake-llm';
import { startRuntime } from '../src/mod.js';
import type { Runtime } from '../src/mod.js';

/** What a request looks like whichever wire format carried it. */
function view(r: FakeRequest) {
  const b = r.body as { system?: string; messages: Array<{ role: string; content: unknown }>; tools?: Array<{ name?: string; function?: { name: string } }> };
  const text = (c: unknown): string => (typeof c === 'string' ? c : Array.isArray(c) ? c.map((x: { text?: string }) => x.text ?? '').join('') : '');
  const system = r.provider === 'anthropic' ? (b.system ?? '') : text(b.messages.find((m) => m.role === 'system')?.content);
  const user = text(b.messages.find((m) => m.role === 'user')?.content);
  const node = /^Node: (\S+)/.exec(user)?.[1] ?? '?';
  const results =
    r.provider === 'openai'
      ? b.messages.filter((m) => m.role === 'tool').length
      : b.messages.flatMap((m) => (Array.isArray(m.content) ? m.content : [])).filter((x: { type?: string }) => x.type === 'tool_result').length;
  const tools = (b.tools ?? []).map((t) => t.name ?? t.function!.name);
  return { system, user, node, results, tools };
}

/**
 * A stand-in for a real model, speaking through the fake provider's wire formats: it searches
 * once where it can, a routing supervisor delegates, sends a malformed call, an invalid route and
 * then a valid one; everything else answers in text derived from its prompt.
 */
function model(r: FakeRequest): FakeReply {
  const v = view(r);
  if (v.system.includes('helper agent')) return { text: `Done: ${v.system.split('\n')[0]}` };
  if (v.tools.includes('route')) {
    switch (v.results) {
      case 0:
        return {
          toolCalls: [
            { name: 'delegate', arguments: { tasks: [{ task: 'Find the invoice' }, { task: 'Check the refund policy' }] } },
            { name: 'route', arguments: '{"next": [' },
          ],
        };
      case 2:
        return { toolCalls: [{ name: 'route', arguments: { next: ['nope'] } }] };
      case 3:
        return { toolCalls: [{ name: 'route', arguments: { next: ['billing'], reason: 'an invoice question' } }] };
      default:
        return { text: 'Routed to billing after the helpers reported.' };
    }
  }
  if (v.tools.includes('web_search') && v.results === 0) return { toolCalls: [{ name: 'web_search', arguments: { query: 'actor model durability' } }] };
  return { text: `The ${v.node} answer: a long enough text to stream in several pieces.`, usage: { input: 40 + (v.user.length % 7), output: 17 } };
}

process.env.AO_TEST_ANTHROPIC_KEY = 'k-anthropic';

/** A router whose supervisor and billing node use profile `llm` (support uses `other`). */
const routerOn = (name: string, llm: string, other: string) =>
  graph(name)
    .node('triage', { agent: 'supervisor', llm, route: true, delegate: 2, maxTurns: 6, instructions: 'Decide who handles the request.' })
    .node('billing', { agent: 'pipeline', llm, instructions: 'Answer the billing question.' })
    .node('support', { agent: 'pipeline', llm: other, instructions: 'Answer the support question.' })
    .edge('triage', 'billing')
    .edge('triage', 'support')
    .budget({ tokens: 50_000, tools: 20 });

async function runtime(env: Record<string, string>): Promise<{ rt: Runtime; close(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'ao-real-'));
  const graphs = [routerOn('router', 'claude', 'default'), routerOn('router-offline', 'offline', 'offline')];
  const rt = await startRuntime(loadConfig({ AO_DATA_DIR: dir, AO_NODE_ID: 'real-agents', ...env }), { graphs });
  return { rt, close: async () => (await rt.close(), await rm(dir, { recursive: true, force: true })) };
}

const events = (rt: Runtime, id: string): Promise<Envelope[]> => rt.engine.listEvents(id, { limit: 100_000 });

async function run(rt: Runtime, graphName: string, input: unknown) {
  const { id } = await rt.engine.startRun({ graph: graphName, input });
  const done = await rt.engine.waitForRun(id, 30_000);
  return { run: done, log: await events(rt, id) };
}

/** A recorded replay from step 0 must reproduce the run with no provider call at all. */
async function expectRecordedReplay(rt: Runtime, fake: FakeProvider | undefined, id: string) {
  const calls = fake?.requests.length;
  const replay = await rt.engine.replay(id, { fromStep: 0, mode: 'recorded' });
  const done = await rt.engine.waitForRun(replay.id, 30_000);
  expect(done.status).toBe('succeeded');
  expect(done.replay?.divergence ?? null).toBeNull();
  expect((await rt.engine.diff(id, replay.id)).identical).toBe(true);
  expect(fake?.requests.length).toBe(calls);
}

// One node for every case (PGlite takes seconds to start): default from OPENAI_* alone, as a user
// of a local Ollama would set it, plus two named profiles.
let openai: FakeProvider;
let anthropic: FakeProvider;
let env: Awaited<ReturnType<typeof runtime>>;
beforeAll(async () => {
  openai = await FakeProvider.start(model);
  anthropic = await FakeProvider.start(model);
  env = await runtime({
    OPENAI_BASE_URL: `${openai.url}/v1`,
    OPENAI_API_KEY: 'ollama',
    AO_LLM_MODEL: 'llama3.2',
    AO_LLM_PROFILES: JSON.stringify({
      claude: { provider: 'anthropic', baseUrl: anthropic.url, model: 'claude-test', apiKeyEnv: 'AO_TEST_ANTHROPIC_KEY' },
      offline: { provider: 'offline' },
    }),
  });
});
afterAll(async () => {
  await env?.close();
  await openai?.close();
  await anthropic?.close();
});

describe('real providers by env: research-swarm against an OpenAI-compatible endpoint (a local fake speaking the wire format)', () => {
  it('runs on the real adapter, streams deltas live, records every response, and replays recorded without calling the provider', async () => {
    const deltas: DeltaEvent[] = [];
    const sub = env.rt.providers.deltas.subscribe('*', (d) => deltas.push(d));
    const before = openai.requests.length;
    const { run: done, log } = await run(env.rt, 'research-swarm', { topic: 'actors' });
    sub.unsubscribe();
    const fake = { requests: openai.requests.slice(before) };
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    // Every model call went to the endpoint, with the model from AO_LLM_MODEL, streaming.
    const requests = log.filter((e) => e.type === 'llm.request');
    expect(fake.requests.length).toBe(requests.length);
    expect(fake.requests.every((r) => r.body.model === 'llama3.2' && r.body.stream === true && r.headers.authorization === 'Bearer ollama')).toBe(true);
    // The model's tool call ran web_search through the budget, and its answer was recorded.
    const search = log.find((e) => e.type === 'tool.call')!;
    expect(search.payload).toMatchObject({ name: 'web_search', args: { query: 'actor model durability' } });
    const responses = log.filter((e) => e.type === 'llm.response');
    expect(responses.map((e) => (e.payload as { model: string }).model).every((m) => m === 'llama3.2')).toBe(true);
    expect(responses.some((e) => (e.payload as { usage: { outputTokens: number } }).usage.outputTokens === 17)).toBe(true);
    // Deltas: never in the log, and what they spell out is each recorded answer.
    expect(log.some((e) => e.type.includes('delta'))).toBe(false);
    const summarise = responses.find((e) => e.from.startsWith('llm/') && e.to === 'supervisor/summarise')!;
    const key = (summarise.payload as { key: string }).key;
    expect(
      deltas
        .filter((d) => d.key === key)
        .map((d) => d.text)
        .join(''),
    ).toBe((summarise.payload as { content: string }).content);
    expect(deltas.filter((d) => d.key === key)[0]).toMatchObject({ runId: done.id, actor: 'supervisor/summarise', attempt: 1, index: 0 });
    await expectRecordedReplay(env.rt, openai, done.id);
  });
});

describe('a routing supervisor with real providers chosen per profile', () => {
  it('delegates to child agents, survives a malformed call and an invalid route, and routes to the successor it picked', async () => {
    const before = openai.requests.length;
    const { run: done, log } = await run(env.rt, 'router', { question: 'Why was I charged twice?' });
    expect(done.status, JSON.stringify(done.error)).toBe('succeeded');
    // Profiles: triage and billing on Anthropic (x-api-key from apiKeyEnv), nothing on the default.
    expect(anthropic.requests.every((r) => r.headers['x-api-key'] === 'k-anthropic' && r.body.model === 'claude-test')).toBe(true);
    expect(openai.requests.length).toBe(before);
    // Routing: billing ran, support was skipped because it was not chosen.
    expect(done.nodes).toMatchObject({ billing: { status: 'succeeded' }, support: { status: 'skipped' } });
    const triage = log.find((e) => e.type === 'node.completed' && (e.payload as { node: string }).node === 'triage')!.payload as {
      output: { route: string[]; tools: Array<{ name: string; ok: boolean; result: { code?: string; message?: string } }> };
      usage: { llmCalls: number };
    };
    expect(triage.output.route).toEqual(['billing']);
    const outcomes = triage.output.tools.map((t) => [t.name, t.ok, t.ok ? null : t.result.code]);
    expect(outcomes).toEqual([
      ['delegate', true, null],
      ['route', false, 'AO_TOOL_ARGS_INVALID'], // malformed JSON, told back to the model
      ['route', false, 'AO_SUPERVISOR_ROUTE_INVALID'], // not a successor
      ['route', true, null],
    ]);
    expect(triage.output.tools[2]!.result.message).toMatch(/Choose among: billing, support/);
    // Delegation: two child agents with their own paths and recorded calls, usage rolled up.
    const tasks = log.filter((e) => e.type.startsWith('task.'));
    expect(tasks.map((e) => [e.type, e.from, e.to])).toEqual(
      expect.arrayContaining([
        ['task.started', 'supervisor/triage', 'supervisor/triage/task-1'],
        ['task.started', 'supervisor/triage', 'supervisor/triage/task-2'],
        ['task.completed', 'supervisor/triage/task-1', 'supervisor/triage'],
        ['task.completed', 'supervisor/triage/task-2', 'supervisor/triage'],
      ]),
    );
    expect(log.filter((e) => e.type === 'llm.request' && e.from.startsWith('supervisor/triage/task-'))).toHaveLength(2);
    expect(triage.usage.llmCalls).toBe(4 + 2); // its own four turns and one call of each child
    await expectRecordedReplay(env.rt, anthropic, done.id);
  });
});

describe('a routing supervisor with the offline model', () => {
  it('routes and delegates deterministically, and a recorded replay reproduces it', async () => {
    const a = await run(env.rt, 'router-offline', { question: 'q' });
    const b = await run(env.rt, 'router-offline', { question: 'q' });
    expect(a.run.status).toBe('succeeded');
    // The offline model picks the first successor and plans one task.
    expect(a.run.nodes).toMatchObject({ billing: { status: 'succeeded' }, support: { status: 'skipped' } });
    expect(a.log.filter((e) => e.type === 'task.completed')).toHaveLength(1);
    expect((await env.rt.engine.diff(a.run.id, b.run.id)).identical).toBe(true);
    await expectRecordedReplay(env.rt, undefined, a.run.id);
  });
});
