import { systemClock } from '../../clock/mod.js';
import type { Clock } from '../../clock/mod.js';
import { estimateTokens } from '../port.js';
import type { ChatMessage, FinishReason, LlmRequest, ToolCall } from '../port.js';
import { DEFAULT_HTTP_POLICY } from './retry.js';
import type { HttpPolicy } from './retry.js';

/** What every HTTP adapter takes. */
export interface HttpLlmOptions {
  /** Endpoint root, e.g. `https://api.openai.com/v1` or `http://localhost:11434/v1`. */
  readonly baseUrl: string;
  /** Sent as the provider's key header; leave it out for local servers that need none. */
  readonly apiKey?: string;
  /** Model used when a request names none. */
  readonly model: string;
  /** Extra headers (e.g. Azure's `api-key`, OpenRouter's `HTTP-Referer`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Extra query parameters (e.g. Azure's `api-version`). */
  readonly query?: Readonly<Record<string, string>>;
  /** Stream the answer (SSE), so deltas can be shown as they come (default true). */
  readonly stream?: boolean;
  readonly policy?: Partial<Omit<HttpPolicy, 'clock'>>;
  readonly clock?: Clock;
  /** Injected for tests; the global fetch otherwise. */
  readonly fetch?: typeof fetch;
}

export function policyOf(o: HttpLlmOptions): HttpPolicy {
  return { ...DEFAULT_HTTP_POLICY, ...o.policy, clock: o.clock ?? systemClock };
}

export function endpoint(baseUrl: string, path: string, query?: Readonly<Record<string, string>>): string {
  const url = new URL(`${baseUrl.replace(/\/+$/, '')}${path}`);
  for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v);
  return url.toString();
}

/**
 * Arguments as a model wrote them: a JSON object, or (cut off, or not JSON) `{}` with the raw
 * text in `malformed`, which the agent loop turns into an error result for the model.
 */
export function parseArguments(raw: unknown): Pick<ToolCall, 'arguments' | 'malformed'> {
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) return { arguments: raw as Record<string, unknown> };
  const text = typeof raw === 'string' ? raw : JSON.stringify(raw ?? null);
  if (text.trim() === '') return { arguments: {} };
  try {
    const v: unknown = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v)) return { arguments: v as Record<string, unknown> };
  } catch {
    // falls through to malformed
  }
  return { arguments: {}, malformed: text.slice(0, 2000) };
}

/** Usage when a provider (or an OpenAI-compatible server) reports none: the port's estimate. */
export function estimateUsage(req: LlmRequest, content: string, calls: readonly ToolCall[]): { inputTokens: number; outputTokens: number } {
  const prompt = req.messages
    .map((m: ChatMessage) => (m.role === 'assistant' && m.toolCalls?.length ? `${m.content}${JSON.stringify(m.toolCalls)}` : m.content))
    .join('\n');
  return {
    inputTokens: estimateTokens(prompt + (req.tools?.length ? JSON.stringify(req.tools) : '')),
    outputTokens: estimateTokens(content + (calls.length ? JSON.stringify(calls) : '')),
  };
}

/** A final answer, a request for tools, or the cap, whatever the provider called it. */
export function finishOf(raw: string | null | undefined, calls: readonly ToolCall[]): FinishReason {
  if (raw === 'length' || raw === 'max_tokens') return 'length';
  if (calls.length) return 'tool_calls';
  return 'stop';
}
