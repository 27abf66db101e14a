import { endpoint, estimateUsage, finishOf, parseArguments, policyOf } from '../http/common.js';
import type { HttpLlmOptions } from '../http/common.js';
import { checkStatus, ProviderError, withRetries } from '../http/retry.js';
import type { Attempt, HttpPolicy } from '../http/retry.js';
import { readSse } from '../http/sse.js';
import type { ChatMessage, LlmCallOptions, LlmPort, LlmRequest, LlmResponse, ToolCall } from '../port.js';

export const ANTHROPIC_VERSION = '2023-06-01';

type Block =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id: string; name: string; input: unknown }
  | { type: 'tool_result'; tool_use_id: string; content: string };
type WireMessage = { role: 'user' | 'assistant'; content: Block[] };

interface WireUsage {
  input_tokens?: number;
  output_tokens?: number;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
}

interface Message {
  model?: string;
  content?: Array<{ type: string; text?: string; id?: string; name?: string; input?: unknown }>;
  stop_reason?: string | null;
  usage?: WireUsage;
}

/**
 * The Anthropic Messages API over plain `fetch`: system prompt, text and `tool_use` blocks, tool
 * results as `tool_result` blocks, usage (cache reads and writes counted as input), SSE
 * streaming with deltas, per-attempt timeouts, and retries on 429/5xx/529 that honour
 * Retry-After (see `http/retry.ts`).
 *
 * @example
 * ```ts
 * const llm = new AnthropicLlm({ baseUrl: 'https://api.anthropic.com', apiKey: key, model: 'claude-sonnet-4-5' });
 * ```
 */
export class AnthropicLlm implements LlmPort {
  readonly provider = 'anthropic';
  private readonly policy: HttpPolicy;
  private readonly fetch: typeof fetch;

  constructor(private readonly o: HttpLlmOptions) {
    this.policy = policyOf(o);
    this.fetch = o.fetch ?? globalThis.fetch;
  }

  complete(req: LlmRequest, signal?: AbortSignal, options: LlmCallOptions = {}): Promise<LlmResponse> {
    const stream = this.o.stream ?? true;
    const system = req.messages
      .filter((m) => m.role === 'system')
      .map((m) => m.content)
      .filter(Boolean)
      .join('\n\n');
    const body = JSON.stringify({
      model: req.model ?? this.o.model,
      max_tokens: req.maxTokens,
      ...(system ? { system } : {}),
      messages: toWire(req.messages),
      ...(req.temperature !== undefined ? { temperature: Math.min(1, req.temperature) } : {}),
      ...(req.tools?.length
        ? { tools: req.tools.map((t) => ({ name: t.name, description: t.description, input_schema: { type: 'object', ...t.parameters } })) }
        : {}),
      ...(stream ? { stream: true } : {}),
    });
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      accept: stream ? 'text/event-stream' : 'application/json',
      'anthropic-version': ANTHROPIC_VERSION,
      ...(this.o.apiKey ? { 'x-api-key': this.o.apiKey } : {}),
      ...this.o.headers,
    };
    const url = endpoint(this.o.baseUrl, '/v1/messages', this.o.query);
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
    let m: Message;
    try {
      m = JSON.parse(text) as Message;
    } catch {
      throw new ProviderError(`the answer is not JSON: ${text.slice(0, 200)}`, false);
    }
    if (!Array.isArray(m.content)) throw new ProviderError(`the answer has no content: ${text.slice(0, 200)}`, false);
    let content = '';
    const calls: ToolCall[] = [];
    for (const b of m.content) {
      if (b.type === 'text') content += b.text ?? '';
      else if (b.type === 'tool_use') calls.push({ id: b.id ?? `toolu_${calls.length}`, name: b.name ?? '', ...parseArguments(b.input ?? {}) });
    }
    return response(req, m.model ?? req.model ?? this.o.model, content, calls, m.stop_reason, m.usage);
  }

  private async readStream(req: LlmRequest, res: Response, a: Attempt, options: LlmCallOptions): Promise<LlmResponse> {
    if (!res.body) throw new ProviderError('the streamed answer has no body', true);
    let model = req.model ?? this.o.model;
    let content = '';
    let stop: string | null | undefined;
    const usage: WireUsage = {};
    let complete = false;
    const blocks = new Map<number, { type: string; id: string; name: string; json: string; input?: unknown }>();
    for await (const ev of readSse(res.body, a.touch)) {
      let d: Record<string, unknown>;
      try {
        d = JSON.parse(ev.data) as Record<string, unknown>;
      } catch {
        throw new ProviderError(`a streamed event is not JSON: ${ev.data.slice(0, 200)}`, false);
      }
      const type = (d.type as string | undefined) ?? ev.event;
      if (type === 'error') {
        const err = d.error as { type?: string; message?: string } | undefined;
        throw new ProviderError(
          `${err?.type ?? 'error'}: ${err?.message ?? ev.data.slice(0, 200)}`,
          err?.type === 'overloaded_error' || err?.type === 'api_error',
        );
      }
      if (type === 'message_start') {
        const msg = d.message as Message | undefined;
        if (msg?.model) model = msg.model;
        Object.assign(usage, msg?.usage);
      } else if (type === 'content_block_start') {
        const b = d.content_block as { type: string; id?: string; name?: string; text?: string; input?: unknown };
        blocks.set(d.index as number, { type: b.type, id: b.id ?? '', name: b.name ?? '', json: '', input: b.input });
        if (b.type === 'text' && b.text) {
          content += b.text;
          options.onDelta?.({ text: b.text, attempt: a.number });
        }
      } else if (type === 'content_block_delta') {
        const delta = d.delta as { type: string; text?: string; partial_json?: string };
        const block = blocks.get(d.index as number);
        if (delta.type === 'text_delta' && delta.text) {
          content += delta.text;
          options.onDelta?.({ text: delta.text, attempt: a.number });
        } else if (delta.type === 'input_json_delta' && block) block.json += delta.partial_json ?? '';
      } else if (type === 'message_delta') {
        const delta = d.delta as { stop_reason?: string | null } | undefined;
        if (delta?.stop_reason) stop = delta.stop_reason;
        Object.assign(usage, d.usage);
      } else if (type === 'message_stop') {
        complete = true;
        break;
      }
    }
    if (!complete) throw new ProviderError('the streamed answer ended before message_stop', true);
    const calls: ToolCall[] = [...blocks.entries()]
      .sort(([x], [y]) => x - y)
      .filter(([, b]) => b.type === 'tool_use')
      .map(([i, b]) => ({ id: b.id || `toolu_${i}`, name: b.name, ...parseArguments(b.json !== '' ? b.json : (b.input ?? {})) }));
    return response(req, model, content, calls, stop, usage);
  }
}

function response(
  req: LlmRequest,
  model: string,
  content: string,
  calls: ToolCall[],
  stop: string | null | undefined,
  usage: WireUsage | undefined,
): LlmResponse {
  const est = estimateUsage(req, content, calls);
  const input =
    usage?.input_tokens === undefined ? undefined : usage.input_tokens + (usage.cache_creation_input_tokens ?? 0) + (usage.cache_read_input_tokens ?? 0);
  return {
    model,
    message: { content, toolCalls: calls },
    usage: { inputTokens: input ?? est.inputTokens, outputTokens: usage?.output_tokens ?? est.outputTokens },
    finishReason: finishOf(stop, calls),
  };
}

/**
 * Our conversation as Anthropic's: system messages go to `system`; tool results are user
 * messages of `tool_result` blocks; consecutive messages of one role merge, since the API wants
 * user and assistant turns to alternate.
 */
function toWire(messages: readonly ChatMessage[]): WireMessage[] {
  const out: WireMessage[] = [];
  const add = (role: WireMessage['role'], blocks: Block[]) => {
    if (!blocks.length) return;
    const last = out[out.length - 1];
    if (last?.role === role) last.content.push(...blocks);
    else out.push({ role, content: blocks });
  };
  for (const m of messages) {
    switch (m.role) {
      case 'system':
        break;
      case 'user':
        add('user', [{ type: 'text', text: m.content }]);
        break;
      case 'assistant':
        add('assistant', [
          ...(m.content ? [{ type: 'text' as const, text: m.content }] : []),
          ...(m.toolCalls ?? []).map((c) => ({ type: 'tool_use' as const, id: c.id, name: c.name, input: c.arguments })),
        ]);
        break;
      case 'tool':
        add('user', [{ type: 'tool_result', tool_use_id: m.toolCallId, content: m.content }]);
        break;
      default:
        m satisfies never;
    }
  }
  return out;
}
