import { endpoint, estimateUsage, finishOf, parseArguments, policyOf } from '../http/common.js';
import { countOpenAiPrompt } from './tokens.js';
import type { HttpLlmOptions } from '../http/common.js';
import { checkStatus, ProviderError, withRetries } from '../http/retry.js';
import type { Attempt, HttpPolicy } from '../http/retry.js';
import { readSse } from '../http/sse.js';
import type { ChatMessage, LlmCallOptions, LlmPort, LlmRequest, LlmResponse, ToolCall } from '../port.js';

export interface OpenAiLlmOptions extends HttpLlmOptions {
  /**
   * The name of the output cap in the body: `max_tokens` (vLLM, Ollama, llama.cpp, LM Studio,
   * OpenRouter, Azure) or `max_completion_tokens` (api.openai.com, where newer models reject
   * `max_tokens`). Default: `max_completion_tokens` for api.openai.com, `max_tokens` elsewhere.
   */
  readonly maxTokensParam?: 'max_tokens' | 'max_completion_tokens';
}

type WireMessage =
  | { role: 'system' | 'user'; content: string }
  | { role: 'assistant'; content: string | null; tool_calls?: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }> }
  | { role: 'tool'; tool_call_id: string; content: string };

interface WireToolCall {
  index?: number;
  id?: string;
  function?: { name?: string; arguments?: string };
}

interface Completion {
  model?: string;
  choices?: Array<{ message?: { content?: string | null; tool_calls?: WireToolCall[] }; finish_reason?: string | null }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
}

interface Chunk {
  model?: string;
  choices?: Array<{ delta?: { content?: string | null; tool_calls?: WireToolCall[] }; finish_reason?: string | null }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: { message?: string };
}

/**
 * The OpenAI Chat Completions wire format over plain `fetch`: OpenAI itself, Azure OpenAI (its
 * `api-key` header and `api-version` query), and the servers that speak it (vLLM, Ollama,
 * llama.cpp server, LM Studio, OpenRouter). Text, tool calls, usage (estimated when a server
 * reports none), SSE streaming with deltas, per-attempt timeouts, and retries with backoff on
 * 429/5xx that honour Retry-After (see `http/retry.ts`).
 *
 * @example
 * ```ts
 * const llm = new OpenAiLlm({ baseUrl: 'http://localhost:11434/v1', model: 'llama3.2' });
 * const res = await llm.complete({ profile: 'default', maxTokens: 256, messages: [{ role: 'user', content: 'Hi' }] });
 * ```
 */
export class OpenAiLlm implements LlmPort {
  readonly provider = 'openai';
  private readonly policy: HttpPolicy;
  private readonly fetch: typeof fetch;
  private readonly maxTokensParam: 'max_tokens' | 'max_completion_tokens';

  constructor(private readonly o: OpenAiLlmOptions) {
    this.policy = policyOf(o);
    this.fetch = o.fetch ?? globalThis.fetch;
    this.maxTokensParam = o.maxTokensParam ?? (/^https:\/\/api\.openai\.com\b/.test(o.baseUrl) ? 'max_completion_tokens' : 'max_tokens');
  }

  /** The prompt in OpenAI's tokens for its models (./tokens.ts); the character estimate for others. */
  countPromptTokens(req: LlmRequest): Promise<number> {
    return countOpenAiPrompt(req.model ?? this.o.model, req);
  }

  complete(req: LlmRequest, signal?: AbortSignal, options: LlmCallOptions = {}): Promise<LlmResponse> {
    const stream = this.o.stream ?? true;
    const body = JSON.stringify({
      model: req.model ?? this.o.model,
      messages: req.messages.map(toWire),
      [this.maxTokensParam]: req.maxTokens,
      ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
      ...(req.tools?.length
        ? { tools: req.tools.map((t) => ({ type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters } })) }
        : {}),
      ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
    });
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: stream ? 'text/event-stream' : 'application/json',
      ...(this.o.apiKey ? { authorization: `Bearer ${this.o.apiKey}` } : {}),
      ...this.o.headers,
    };
    const url = endpoint(this.o.baseUrl, '/chat/completions', this.o.query);
    return withRetries(
      this.provider,
      this.policy,
      signal,
      async (a) => {
        a.touch();
        const res = await checkStatus(await this.fetch(url, { method: 'POST', headers, body, signal: a.signal }), this.policy.clock);
        return stream && (res.headers.get('content-type') ?? '').includes('text/event-stream')
          ? this.readStream(req, res, a, options)
          : this.readJson(req, await res.text());
      },
      { rateLimited: options.rateLimited },
    );
  }

  private readJson(req: LlmRequest, text: string): LlmResponse {
    let c: Completion;
    try {
      c = JSON.parse(text) as Completion;
    } catch {
      throw new ProviderError(`the answer is not JSON: ${text.slice(0, 200)}`, false);
    }
    const choice = c.choices?.[0];
    if (!choice) throw new ProviderError(`the answer has no choices: ${text.slice(0, 200)}`, false);
    const calls = (choice.message?.tool_calls ?? []).map(toCall);
    const content = choice.message?.content ?? '';
    return response(req, c.model ?? req.model ?? this.o.model, content, calls, choice.finish_reason, c.usage);
  }

  private async readStream(req: LlmRequest, res: Response, a: Attempt, options: LlmCallOptions): Promise<LlmResponse> {
    if (!res.body) throw new ProviderError('the streamed answer has no body', true);
    let model = req.model ?? this.o.model;
    let content = '';
    let finish: string | null | undefined;
    let usage: Chunk['usage'];
    let done = false;
    // Tool calls arrive in pieces keyed by index: the first piece has id and name, the rest append arguments.
    const parts = new Map<number, { id: string; name: string; args: string }>();
    for await (const ev of readSse(res.body, a.touch)) {
      if (ev.data === '[DONE]') {
        done = true;
        break;
      }
      let chunk: Chunk;
      try {
        chunk = JSON.parse(ev.data) as Chunk;
      } catch {
        throw new ProviderError(`a streamed chunk is not JSON: ${ev.data.slice(0, 200)}`, false);
      }
      if (chunk.error) throw new ProviderError(chunk.error.message ?? 'error event in the stream', true);
      if (chunk.model) model = chunk.model;
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices?.[0];
      if (!choice) continue;
      const text = choice.delta?.content;
      if (text) {
        content += text;
        options.onDelta?.({ text, attempt: a.number });
      }
      for (const tc of choice.delta?.tool_calls ?? []) {
        const i = tc.index ?? parts.size;
        const p = parts.get(i) ?? { id: '', name: '', args: '' };
        if (tc.id) p.id = tc.id;
        if (tc.function?.name) p.name += tc.function.name;
        if (tc.function?.arguments) p.args += tc.function.arguments;
        parts.set(i, p);
      }
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    // Some servers end without [DONE]; an answer with no finish reason at all was cut off.
    if (!done && finish === undefined) throw new ProviderError('the streamed answer ended before it was complete', true);
    const calls = [...parts.entries()]
      .sort(([x], [y]) => x - y)
      .map(([i, p]) => toCall({ id: p.id || `call_${i}`, function: { name: p.name, arguments: p.args } }));
    return response(req, model, content, calls, finish, usage);
  }
}

function response(
  req: LlmRequest,
  model: string,
  content: string,
  calls: ToolCall[],
  finish: string | null | undefined,
  usage: Completion['usage'],
): LlmResponse {
  const est = estimateUsage(req, content, calls);
  return {
    model,
    message: { content, toolCalls: calls },
    usage: { inputTokens: usage?.prompt_tokens ?? est.inputTokens, outputTokens: usage?.completion_tokens ?? est.outputTokens },
    finishReason: finishOf(finish, calls),
  };
}

function toCall(tc: WireToolCall, i = 0): ToolCall {
  return { id: tc.id || `call_${i}`, name: tc.function?.name ?? '', ...parseArguments(tc.function?.arguments ?? '') };
}

function toWire(m: ChatMessage): WireMessage {
  switch (m.role) {
    case 'system':
    case 'user':
      return { role: m.role, content: m.content };
    case 'assistant':
      return m.toolCalls?.length
        ? {
            role: 'assistant',
            content: m.content || null,
            tool_calls: m.toolCalls.map((c) => ({
              id: c.id,
              type: 'function',
              function: { name: c.name, arguments: c.malformed ?? JSON.stringify(c.arguments) },
            })),
          }
        : { role: 'assistant', content: m.content };
    case 'tool':
      return { role: 'tool', tool_call_id: m.toolCallId, content: m.content };
    default:
      return m satisfies never;
  }
}
