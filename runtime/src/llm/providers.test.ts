import { afterEach, describe, expect, it } from 'vitest';
import { isAoError } from '@ao/graphs';
import { AnthropicLlm } from './anthropic/mod.js';
import type { HttpLlmOptions } from './http/mod.js';
import { OpenAiLlm } from './openai/mod.js';
import type { LlmDelta, LlmPort, LlmRequest } from './port.js';
import { LlmProfiles, llmProfilesOf } from './profiles.js';
import { FakeProvider } from './testing/fake-provider.js';
import type { FakeReply, FakeRequest } from './testing/fake-provider.js';

let fake: FakeProvider | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

const FAST = { baseDelayMs: 20, maxDelayMs: 5_000, timeoutMs: 5_000, idleTimeoutMs: 5_000, maxRetries: 3 };

const PROVIDERS = {
  openai: (o: HttpLlmOptions) => new OpenAiLlm({ ...o, baseUrl: `${o.baseUrl}/v1` }),
  anthropic: (o: HttpLlmOptions) => new AnthropicLlm(o),
} as const;

async function setup(provider: keyof typeof PROVIDERS, respond: (r: FakeRequest) => FakeReply, o: Partial<HttpLlmOptions> = {}): Promise<LlmPort> {
  fake = await FakeProvider.start(respond);
  return PROVIDERS[provider]({ baseUrl: fake.url, apiKey: 'sk-test', model: 'test-model', ...o, policy: { ...FAST, ...o.policy } });
}

const ask = (extra: Partial<LlmRequest> = {}): LlmRequest => ({
  profile: 'default',
  maxTokens: 200,
  messages: [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'What is the weather in Paris?' },
  ],
  ...extra,
});

const weatherTool = {
  name: 'get_weather',
  description: 'Weather of a city.',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] },
};

async function failure(
  p: Promise<unknown>,
): Promise<{ code?: string; name?: string; message: string; details?: Record<string, unknown>; retryable?: boolean }> {
  try {
    await p;
  } catch (e) {
    if (isAoError(e)) return { code: e.code, message: e.message, details: e.details ?? {}, retryable: e.retryable };
    return { name: (e as Error).name, message: (e as Error).message };
  }
  throw new Error('expected a failure');
}

describe.each(['openai', 'anthropic'] as const)('%s adapter against a local server speaking its wire format', (provider) => {
  for (const stream of [false, true]) {
    const mode = stream ? 'streaming (SSE)' : 'JSON';
    it(`answers with text and usage (${mode})`, async () => {
      const llm = await setup(provider, () => ({ text: 'Sunny, 24 degrees, light wind from the west.', usage: { input: 31, output: 12 } }), { stream });
      const deltas: LlmDelta[] = [];
      const res = await llm.complete(ask(), undefined, { onDelta: (d) => deltas.push(d) });
      expect(res).toEqual({
        model: 'test-model',
        message: { content: 'Sunny, 24 degrees, light wind from the west.', toolCalls: [] },
        usage: { inputTokens: 31, outputTokens: 12 },
        finishReason: 'stop',
      });
      // Streaming writes the answer piece by piece; JSON has no pieces.
      if (stream) {
        expect(deltas.length).toBeGreaterThan(5);
        expect(deltas.map((d) => d.text).join('')).toBe(res.message.content);
        expect(deltas.every((d) => d.attempt === 1)).toBe(true);
      } else expect(deltas).toEqual([]);
      const sent = fake!.requests[0]!;
      expect(sent.body.stream === true).toBe(stream);
      expect(sent.body.model).toBe('test-model');
      expect(sent.body.max_tokens).toBe(200);
      if (provider === 'openai') {
        expect(sent.headers.authorization).toBe('Bearer sk-test');
        expect(sent.body.messages).toEqual([
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'What is the weather in Paris?' },
        ]);
        if (stream) expect(sent.body.stream_options).toEqual({ include_usage: true });
      } else {
        expect(sent.headers['x-api-key']).toBe('sk-test');
        expect(sent.headers['anthropic-version']).toBe('2023-06-01');
        expect(sent.body.system).toBe('Be brief.');
        expect(sent.body.messages).toEqual([{ role: 'user', content: [{ type: 'text', text: 'What is the weather in Paris?' }] }]);
      }
    });

    it(`returns tool calls with parsed arguments, and sends tools and tool results in the provider's shape (${mode})`, async () => {
      const llm = await setup(
        provider,
        () => ({
          text: provider === 'anthropic' ? 'Let me look.' : '',
          toolCalls: [
            { id: 'c1', name: 'get_weather', arguments: { city: 'Paris' } },
            { id: 'c2', name: 'get_weather', arguments: { city: 'Lyon' } },
          ],
        }),
        { stream },
      );
      const res = await llm.complete(
        ask({
          tools: [weatherTool],
          messages: [
            ...ask().messages,
            { role: 'assistant', content: '', toolCalls: [{ id: 'c0', name: 'get_weather', arguments: { city: 'Nice' } }] },
            { role: 'tool', toolCallId: 'c0', name: 'get_weather', content: '{"temp":20}' },
          ],
        }),
      );
      expect(res.finishReason).toBe('tool_calls');
      expect(res.message.toolCalls).toEqual([
        { id: 'c1', name: 'get_weather', arguments: { city: 'Paris' } },
        { id: 'c2', name: 'get_weather', arguments: { city: 'Lyon' } },
      ]);
      const body = fake!.requests[0]!.body;
      if (provider === 'openai') {
        expect(body.tools).toEqual([{ type: 'function', function: weatherTool }]);
        expect((body.messages as unknown[]).slice(2)).toEqual([
          { role: 'assistant', content: null, tool_calls: [{ id: 'c0', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Nice"}' } }] },
          { role: 'tool', tool_call_id: 'c0', content: '{"temp":20}' },
        ]);
      } else {
        expect(body.tools).toEqual([{ name: 'get_weather', description: 'Weather of a city.', input_schema: weatherTool.parameters }]);
        expect((body.messages as unknown[]).slice(1)).toEqual([
          { role: 'assistant', content: [{ type: 'tool_use', id: 'c0', name: 'get_weather', input: { city: 'Nice' } }] },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'c0', content: '{"temp":20}' }] },
        ]);
      }
    });
  }

  it('keeps malformed tool arguments as `malformed` instead of failing the call', async () => {
    // Anthropic's JSON form always carries an object; its streamed form carries text that may be cut off.
    const llm = await setup(provider, () => ({ toolCalls: [{ id: 'c1', name: 'get_weather', arguments: '{"city": "Par' }] }), { stream: true });
    const res = await llm.complete(ask({ tools: [weatherTool] }));
    expect(res.message.toolCalls).toEqual([{ id: 'c1', name: 'get_weather', arguments: {}, malformed: '{"city": "Par' }]);
  });

  it('estimates usage when the server reports none', async () => {
    const llm = await setup(provider, () => ({ text: 'twelve chars', noUsage: true }), { stream: false });
    const res = await llm.complete(ask());
    if (provider === 'openai') expect(res.usage).toEqual({ inputTokens: expect.any(Number), outputTokens: 3 });
    expect(res.usage.inputTokens).toBeGreaterThan(0);
  });

  it('retries a 429 after the Retry-After it names, then succeeds', async () => {
    const llm = await setup(provider, (r) => (r.n === 1 ? { status: 429, retryAfter: '1' } : { text: 'ok' }));
    const t0 = Date.now();
    const res = await llm.complete(ask());
    const waited = fake!.requests[1]!.at - fake!.requests[0]!.at;
    expect(res.message.content).toBe('ok');
    expect(waited).toBeGreaterThanOrEqual(950);
    expect(waited).toBeLessThan(1_600);
    expect(Date.now() - t0).toBeLessThan(2_500);
  });

  it('retries 500s with exponential backoff and gives up after maxRetries with AO_LLM_FAILED', async () => {
    const llm = await setup(provider, () => ({ status: 500 }), { policy: { ...FAST, maxRetries: 2, baseDelayMs: 50 } });
    const f = await failure(llm.complete(ask()));
    expect(f).toMatchObject({ code: 'AO_LLM_FAILED', retryable: true, details: { status: 500, attempts: 3 } });
    const [a, b, c] = fake!.requests.map((r) => r.at);
    expect(fake!.requests).toHaveLength(3);
    expect(b! - a!).toBeGreaterThanOrEqual(45); // 50 ms
    expect(c! - b!).toBeGreaterThanOrEqual(95); // 100 ms
  });

  it('fails at once, retryable, when Retry-After is longer than it may wait', async () => {
    const llm = await setup(provider, () => ({ status: 429, retryAfter: '120' }), { policy: { ...FAST, maxDelayMs: 10_000 } });
    const f = await failure(llm.complete(ask()));
    expect(f).toMatchObject({ code: 'AO_LLM_RATE_LIMITED', retryable: true, details: { status: 429, retryAfterMs: 120_000 } });
    expect(fake!.requests).toHaveLength(1);
  });

  it('does not retry a 400 (the same request fails the same way)', async () => {
    const llm = await setup(provider, () => ({ status: 400 }));
    expect(await failure(llm.complete(ask()))).toMatchObject({ code: 'AO_LLM_FAILED', retryable: false, details: { status: 400 } });
    expect(fake!.requests).toHaveLength(1);
  });

  it('times out a hung response and retries it', async () => {
    const llm = await setup(provider, (r) => (r.n === 1 ? { hang: 'request' } : r.n === 2 ? { hang: 'headers' } : { text: 'finally' }), {
      policy: { ...FAST, timeoutMs: 300 },
    });
    const t0 = Date.now();
    const res = await llm.complete(ask());
    expect(res.message.content).toBe('finally');
    expect(fake!.requests).toHaveLength(3);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
  });

  it('gives up on a server that always hangs with AO_LLM_TIMEOUT', async () => {
    const llm = await setup(provider, () => ({ hang: 'request' }), { policy: { ...FAST, timeoutMs: 150, maxRetries: 1 } });
    expect(await failure(llm.complete(ask()))).toMatchObject({ code: 'AO_LLM_TIMEOUT', retryable: true, details: { attempts: 2, kind: 'total' } });
  });

  it('treats a stream that stalls mid-answer as hung (idle timeout) and starts the answer again', async () => {
    const llm = await setup(provider, (r) => (r.n === 1 ? { stallAfterEvents: 3, answer: { text: 'abcdefghijklmnop' } } : { text: 'abcdefghijklmnop' }), {
      stream: true,
      policy: { ...FAST, idleTimeoutMs: 200 },
    });
    const deltas: LlmDelta[] = [];
    const res = await llm.complete(ask(), undefined, { onDelta: (d) => deltas.push(d) });
    expect(res.message.content).toBe('abcdefghijklmnop');
    // The second attempt writes the whole answer again, marked as such.
    expect(
      deltas
        .filter((d) => d.attempt === 2)
        .map((d) => d.text)
        .join(''),
    ).toBe('abcdefghijklmnop');
  });

  it('stops at once when the caller aborts, also during a backoff', async () => {
    const llm = await setup(provider, () => ({ status: 503, retryAfter: '3' }));
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('budget stop')), 100);
    const t0 = Date.now();
    expect(await failure(llm.complete(ask(), ac.signal))).toMatchObject({ name: 'AbortError' });
    expect(Date.now() - t0).toBeLessThan(1_000);
    expect(fake!.requests).toHaveLength(1);
  });
});

describe('LLM profiles', () => {
  it('default is offline with no provider variables', () => {
    expect(llmProfilesOf({}).default).toEqual({ provider: 'offline' });
  });

  it('OPENAI_API_KEY (and OPENAI_BASE_URL alone, for a keyless local server) switch default to the OpenAI wire format', () => {
    expect(llmProfilesOf({ OPENAI_API_KEY: 'sk-1' }).default).toMatchObject({
      provider: 'openai',
      baseUrl: 'https://api.openai.com/v1',
      apiKey: 'sk-1',
      model: 'gpt-4o-mini',
    });
    expect(llmProfilesOf({ OPENAI_BASE_URL: 'http://localhost:11434/v1', AO_LLM_MODEL: 'llama3.2' }).default).toEqual({
      provider: 'openai',
      baseUrl: 'http://localhost:11434/v1',
      model: 'llama3.2',
    });
  });

  it('ANTHROPIC_API_KEY switches default to Anthropic; AO_LLM_PROFILES wins over both', () => {
    expect(llmProfilesOf({ ANTHROPIC_API_KEY: 'k' }).default).toMatchObject({ provider: 'anthropic', baseUrl: 'https://api.anthropic.com', apiKey: 'k' });
    const p = llmProfilesOf({ ANTHROPIC_API_KEY: 'k', AO_LLM_PROFILES: { default: { provider: 'offline' } } });
    expect(p.default).toEqual({ provider: 'offline' });
  });

  it('resolves a node profile by name and an unknown one to default; describe shows no secrets', () => {
    const profiles = new LlmProfiles(
      {
        default: { provider: 'offline' },
        fast: { provider: 'openai', baseUrl: 'http://127.0.0.1:1/v1', model: 'm', apiKey: 'secret' },
        claude: { provider: 'anthropic', baseUrl: 'http://127.0.0.1:1', model: 'c', apiKeyEnv: 'MY_KEY' },
      },
      { env: { MY_KEY: 'k2' } },
    );
    expect(profiles.resolve('fast').provider).toBe('openai');
    expect(profiles.resolve('claude').provider).toBe('anthropic');
    expect(profiles.resolve('nope').provider).toBe('offline');
    expect(JSON.stringify(profiles.describe())).not.toMatch(/secret|k2/);
  });

  it('a profile whose apiKeyEnv is unset is a config error', () => {
    expect(
      () => new LlmProfiles({ default: { provider: 'anthropic', baseUrl: 'http://x', model: 'c', apiKeyEnv: 'UNSET_KEY_FOR_TEST' } }, { env: {} }),
    ).toThrow(/UNSET_KEY_FOR_TEST/);
  });
});
