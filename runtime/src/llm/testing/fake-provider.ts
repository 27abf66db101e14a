import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeLimiter } from './fake-limits.js';
import type { FakeLimits } from './fake-limits.js';

/** What the fake model answers: text and/or tool calls (arguments as an object, or raw text to send malformed ones). */
export interface FakeAnswer {
  text?: string;
  toolCalls?: Array<{ id?: string; name: string; arguments: Record<string, unknown> | string }>;
  usage?: { input: number; output: number };
  /** Leave usage out of the answer (servers that report none). */
  noUsage?: boolean;
  /** The reason given: `stop`/`end_turn` by default, `tool_calls`/`tool_use` with calls. */
  finish?: 'length';
  model?: string;
  /** Answer after this long (a model's latency). */
  delayMs?: number;
}

/** A fault instead of an answer. */
export type FakeFault =
  | { status: number; retryAfter?: string; retryAfterMs?: string; body?: unknown }
  /** Accept the request and never answer (`headers`: send the status line and headers first, then nothing). */
  | { hang: 'request' | 'headers' }
  /** Stream this much of the answer, then stall (no bytes, connection open). */
  | { stallAfterEvents: number; answer: FakeAnswer };

export type FakeReply = FakeAnswer | FakeFault;

export interface FakeRequest {
  provider: 'openai' | 'anthropic';
  path: string;
  headers: IncomingMessage['headers'];
  body: Record<string, unknown>;
  /** 1-based count of requests this server received. */
  n: number;
  at: number;
}

const isFault = (r: FakeReply): r is FakeFault => 'status' in r || 'hang' in r || 'stallAfterEvents' in r;

/**
 * A local HTTP server speaking the OpenAI Chat Completions (`POST /v1/chat/completions`) and
 * Anthropic Messages (`POST /v1/messages`) wire formats, JSON and SSE streaming as each provider
 * sends them (chunk shapes, event names, usage placement, `[DONE]`), with scripted faults: any
 * status with Retry-After, a hung request, a stalled stream. Tests point adapters at it; nothing
 * leaves the machine.
 *
 * @example
 * ```ts
 * const fake = await FakeProvider.start((r) => (r.n === 1 ? { status: 429, retryAfter: '0' } : { text: 'hi' }));
 * const llm = new OpenAiLlm({ baseUrl: `${fake.url}/v1`, model: 'm' });
 * ```
 */
export class FakeProvider {
  readonly requests: FakeRequest[] = [];
  private readonly open = new Set<ServerResponse>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
    limiter?: FakeLimiter,
  ) {
    this.limiter = limiter;
  }

  /** With `limits`: the provider's rate limits, enforced with 429s (see {@link FakeLimiter}). */
  readonly limiter: FakeLimiter | undefined;

  static async start(respond: (r: FakeRequest) => FakeReply, o: { limits?: FakeLimits } = {}): Promise<FakeProvider> {
    const limiter = o.limits ? new FakeLimiter(o.limits) : undefined;
    const holder: { self?: FakeProvider } = {};
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = (req.url ?? '').split('?')[0]!;
        // A bench running the fake in a process of its own reads the enforcer's counts here.
        if (path === '/_stats' && req.method === 'GET') {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(limiter?.stats() ?? {}));
          return;
        }
        const provider = path.endsWith('/chat/completions') ? 'openai' : path.endsWith('/messages') ? 'anthropic' : undefined;
        if (!provider || req.method !== 'POST') {
          res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":{"message":"not found"}}');
          return;
        }
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
        const r: FakeRequest = { provider, path: req.url ?? '', headers: req.headers, body, n: holder.self!.requests.length + 1, at: Date.now() };
        holder.self!.requests.push(r);
        holder.self!.open.add(res);
        res.on('close', () => holder.self!.open.delete(res));
        const reply = respond(r);
        if (limiter && !isFault(reply)) {
          const u = usageOf(reply);
          const admitted = limiter.admit(u);
          if (!admitted.ok) return holder.self!.reply(r, res, { status: 429, retryAfterMs: String(admitted.retryAfterMs) });
          res.on('close', () => limiter.done());
        }
        if (!isFault(reply) && reply.delayMs) setTimeout(() => holder.self!.reply(r, res, reply), reply.delayMs);
        else holder.self!.reply(r, res, reply);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    holder.self = new FakeProvider(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, limiter);
    return holder.self;
  }

  async close(): Promise<void> {
    for (const res of this.open) res.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private reply(r: FakeRequest, res: ServerResponse, reply: FakeReply): void {
    const stream = r.body.stream === true;
    if (isFault(reply)) {
      if ('status' in reply) {
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (reply.retryAfter !== undefined) headers['retry-after'] = reply.retryAfter;
        if (reply.retryAfterMs !== undefined) headers['retry-after-ms'] = reply.retryAfterMs;
        const body =
          reply.body ??
          (r.provider === 'openai'
            ? { error: { message: `fake status ${reply.status}`, type: reply.status === 429 ? 'rate_limit_exceeded' : 'server_error', code: null } }
            : {
                type: 'error',
                error: {
                  type: reply.status === 429 ? 'rate_limit_error' : reply.status === 529 ? 'overloaded_error' : 'api_error',
                  message: `fake status ${reply.status}`,
                },
              });
        res.writeHead(reply.status, headers).end(JSON.stringify(body));
        return;
      }
      if ('hang' in reply) {
        if (reply.hang === 'headers') res.writeHead(200, { 'content-type': stream ? 'text/event-stream' : 'application/json' }).flushHeaders();
        return; // never answers; close() destroys it
      }
      const events = r.provider === 'openai' ? openAiEvents(r, reply.answer) : anthropicEvents(r, reply.answer);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      for (const e of events.slice(0, reply.stallAfterEvents)) res.write(e);
      return;
    }
    if (stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      const events = r.provider === 'openai' ? openAiEvents(r, reply) : anthropicEvents(r, reply);
      // Written one event per tick, as a server streaming tokens would.
      let i = 0;
      const next = () => {
        if (res.destroyed) return;
        if (i >= events.length) return void res.end();
        res.write(events[i++]);
        setImmediate(next);
      };
      next();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(r.provider === 'openai' ? openAiJson(r, reply) : anthropicJson(r, reply)));
  }
}

const argText = (a: Record<string, unknown> | string): string => (typeof a === 'string' ? a : JSON.stringify(a));
const modelOf = (r: FakeRequest, a: FakeAnswer): string => a.model ?? String(r.body.model ?? 'fake-model');
const usageOf = (a: FakeAnswer) => a.usage ?? { input: 11, output: 7 };
/** Text cut into pieces of a few characters, as tokens arrive. */
const pieces = (s: string): string[] => s.match(/.{1,4}/gs) ?? [];

function openAiJson(r: FakeRequest, a: FakeAnswer) {
  const calls = (a.toolCalls ?? []).map((c, i) => ({
    id: c.id ?? `call_${r.n}_${i}`,
    type: 'function',
    function: { name: c.name, arguments: argText(c.arguments) },
  }));
  const u = usageOf(a);
  return {
    id: `chatcmpl-${r.n}`,
    object: 'chat.completion',
    created: 1_767_225_600,
    model: modelOf(r, a),
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: a.text ?? (calls.length ? null : ''), ...(calls.length ? { tool_calls: calls } : {}), refusal: null },
        logprobs: null,
        finish_reason: a.finish ?? (calls.length ? 'tool_calls' : 'stop'),
      },
    ],
    ...(a.noUsage ? {} : { usage: { prompt_tokens: u.input, completion_tokens: u.output, total_tokens: u.input + u.output } }),
    system_fingerprint: 'fp_fake',
  };
}

function openAiEvents(r: FakeRequest, a: FakeAnswer): string[] {
  const base = { id: `chatcmpl-${r.n}`, object: 'chat.completion.chunk', created: 1_767_225_600, model: modelOf(r, a), system_fingerprint: 'fp_fake' };
  const ev = (choices: unknown[], extra: Record<string, unknown> = {}) => `data: ${JSON.stringify({ ...base, choices, ...extra })}\n\n`;
  const out = [ev([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }])];
  for (const p of pieces(a.text ?? '')) out.push(ev([{ index: 0, delta: { content: p }, logprobs: null, finish_reason: null }]));
  (a.toolCalls ?? []).forEach((c, i) => {
    out.push(
      ev([
        {
          index: 0,
          delta: { tool_calls: [{ index: i, id: c.id ?? `call_${r.n}_${i}`, type: 'function', function: { name: c.name, arguments: '' } }] },
          logprobs: null,
          finish_reason: null,
        },
      ]),
    );
    for (const p of pieces(argText(c.arguments)))
      out.push(ev([{ index: 0, delta: { tool_calls: [{ index: i, function: { arguments: p } }] }, logprobs: null, finish_reason: null }]));
  });
  out.push(ev([{ index: 0, delta: {}, logprobs: null, finish_reason: a.finish ?? (a.toolCalls?.length ? 'tool_calls' : 'stop') }]));
  const opts = r.body.stream_options as { include_usage?: boolean } | undefined;
  const u = usageOf(a);
  if (opts?.include_usage && !a.noUsage) out.push(ev([], { usage: { prompt_tokens: u.input, completion_tokens: u.output, total_tokens: u.input + u.output } }));
  out.push('data: [DONE]\n\n');
  return out;
}

function anthropicJson(r: FakeRequest, a: FakeAnswer) {
  const u = usageOf(a);
  return {
    id: `msg_${r.n}`,
    type: 'message',
    role: 'assistant',
    model: modelOf(r, a),
    content: [
      ...(a.text ? [{ type: 'text', text: a.text }] : []),
      ...(a.toolCalls ?? []).map((c, i) => ({
        type: 'tool_use',
        id: c.id ?? `toolu_${r.n}_${i}`,
        name: c.name,
        input: typeof c.arguments === 'string' ? {} : c.arguments,
      })),
    ],
    stop_reason: a.finish === 'length' ? 'max_tokens' : a.toolCalls?.length ? 'tool_use' : 'end_turn',
    stop_sequence: null,
    usage: { input_tokens: u.input, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: u.output },
  };
}

function anthropicEvents(r: FakeRequest, a: FakeAnswer): string[] {
  const ev = (type: string, data: Record<string, unknown>) => `event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`;
  const u = usageOf(a);
  const out = [
    ev('message_start', {
      message: {
        id: `msg_${r.n}`,
        type: 'message',
        role: 'assistant',
        model: modelOf(r, a),
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: u.input, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, output_tokens: 1 },
      },
    }),
  ];
  let index = 0;
  if (a.text) {
    out.push(ev('content_block_start', { index, content_block: { type: 'text', text: '' } }), ev('ping', {}));
    for (const p of pieces(a.text)) out.push(ev('content_block_delta', { index, delta: { type: 'text_delta', text: p } }));
    out.push(ev('content_block_stop', { index }));
    index += 1;
  }
  (a.toolCalls ?? []).forEach((c, i) => {
    out.push(ev('content_block_start', { index, content_block: { type: 'tool_use', id: c.id ?? `toolu_${r.n}_${i}`, name: c.name, input: {} } }));
    for (const p of pieces(argText(c.arguments))) out.push(ev('content_block_delta', { index, delta: { type: 'input_json_delta', partial_json: p } }));
    out.push(ev('content_block_stop', { index }));
    index += 1;
  });
  out.push(
    ev('message_delta', {
      delta: { stop_reason: a.finish === 'length' ? 'max_tokens' : a.toolCalls?.length ? 'tool_use' : 'end_turn', stop_sequence: null },
      usage: { output_tokens: u.output },
    }),
    ev('message_stop', {}),
  );
  return out;
}
