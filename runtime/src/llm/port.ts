import { z } from 'zod';
import { AoError, zodIssuePath } from '@ao/graphs';
import type { ThrottleInfo } from './limits/limiter.js';

/** A model's request to call one tool; `id` pairs it with the `tool` message that answers it. */
export const ToolCallSchema = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  arguments: z.record(z.string(), z.unknown()),
  /**
   * Set when the model's arguments were not a JSON object (cut off, or not JSON at all): the raw
   * text, kept so the agent loop can tell the model what was wrong (`arguments` is then `{}`).
   */
  malformed: z.string().optional(),
});
export type ToolCall = z.infer<typeof ToolCallSchema>;

/** One turn of a conversation, discriminated on `role`. */
export const ChatMessageSchema = z.discriminatedUnion('role', [
  z.object({ role: z.literal('system'), content: z.string() }),
  z.object({ role: z.literal('user'), content: z.string() }),
  z.object({ role: z.literal('assistant'), content: z.string(), toolCalls: z.array(ToolCallSchema).optional() }),
  z.object({ role: z.literal('tool'), toolCallId: z.string().min(1), name: z.string().min(1), content: z.string() }),
]);
export type ChatMessage = z.infer<typeof ChatMessageSchema>;

/** A tool as offered to a model: `parameters` is a JSON schema of its arguments. */
export const ToolSpecSchema = z.object({
  name: z.string().min(1),
  description: z.string(),
  parameters: z.record(z.string(), z.unknown()),
});
export type ToolSpec = z.infer<typeof ToolSpecSchema>;

/**
 * What an agent asks of a model. `profile` names an LLM profile from config (a node's `llm`
 * option); `model` overrides the profile's model. The abort signal travels beside the request,
 * not in it, so a request stays plain data that can be journaled and hashed.
 */
export const LlmRequestSchema = z.object({
  profile: z.string().min(1),
  model: z.string().min(1).optional(),
  messages: z.array(ChatMessageSchema).min(1),
  tools: z.array(ToolSpecSchema).optional(),
  maxTokens: z.number().int().positive(),
  temperature: z.number().min(0).max(2).optional(),
});
export type LlmRequest = z.infer<typeof LlmRequestSchema>;

/** Why the model stopped: a final answer, a request for tools, or the `maxTokens` cap. */
export const FinishReasonSchema = z.enum(['stop', 'tool_calls', 'length']);
export type FinishReason = z.infer<typeof FinishReasonSchema>;

/** What every adapter returns; callers check it with {@link parseLlmResponse} at the boundary. */
export const LlmResponseSchema = z.object({
  model: z.string().min(1),
  message: z.object({ content: z.string(), toolCalls: z.array(ToolCallSchema) }),
  usage: z.object({ inputTokens: z.number().int().nonnegative(), outputTokens: z.number().int().nonnegative() }),
  finishReason: FinishReasonSchema,
});
export type LlmResponse = z.infer<typeof LlmResponseSchema>;

/**
 * The one way the runtime talks to a model. Adapters (`offline/`, `openai/`) implement it and
 * are the only code that knows a provider's wire format.
 *
 * @example
 * ```ts
 * const res = parseLlmResponse(await llm.complete(req, signal), llm.provider);
 * if (res.finishReason === 'tool_calls') for (const call of res.message.toolCalls) run(call);
 * ```
 */
export interface LlmPort {
  /** Provider name, e.g. `offline`, `openai` or `anthropic`; recorded with every call. */
  readonly provider: string;
  /** Rejects with an error named `AbortError` when `signal` aborts. */
  complete(req: LlmRequest, signal?: AbortSignal, options?: LlmCallOptions): Promise<LlmResponse>;
  /**
   * The input tokens the provider will count for this request, or an upper bound of them: what
   * the budget reserves for the prompt. Without it the runtime reserves `promptTokenEstimate`.
   */
  countPromptTokens?(req: LlmRequest): number | Promise<number>;
  /** The most output a call may ask for through this port (its profile's `maxTokens`): larger asks are lowered to it. */
  readonly maxOutputTokens?: number;
}

/**
 * The prompt's tokens when the provider gives no count of its own: a character count of the JSON
 * of the messages and tool schemas, at 4 characters a token. An upper bound of what the offline
 * model counts (it counts the text without the JSON); for a real model, about right for English
 * and code and an undercount for text that tokenises densely (CJK, emoji): ports that can count
 * exactly (OpenAI, with its tokenizer) do.
 */
export function promptTokenEstimate(req: Pick<LlmRequest, 'messages' | 'tools'>): number {
  return estimateTokensOfLength(messagesJsonLength(req.messages) + JSON.stringify(req.tools ?? []).length);
}

/**
 * `JSON.stringify(messages).length`, without serialising again the messages an earlier call of
 * the same array counted: an agent loop sends one array a turn longer each time, and serialising
 * it whole every turn makes a conversation cost O(n^2) (issue 22). Earlier messages are recognised
 * by identity; messages are never changed in place.
 */
function messagesJsonLength(messages: readonly unknown[]): number {
  let c = counted.get(messages);
  if (!c || c.fed.length > messages.length || c.fed.some((m, i) => m !== messages[i])) c = { fed: [], chars: 0 };
  for (let i = c.fed.length; i < messages.length; i++) {
    c.chars += (JSON.stringify(messages[i]) ?? 'null').length;
    c.fed.push(messages[i]);
  }
  counted.set(messages, c);
  // The brackets, and a comma between two messages.
  return c.chars + 2 + Math.max(0, messages.length - 1);
}
const counted = new WeakMap<readonly unknown[], { fed: unknown[]; chars: number }>();

/** One piece of an answer as a streaming provider writes it. */
export interface LlmDelta {
  /** Text appended to the answer. */
  readonly text: string;
  /** Counts from 1 per HTTP attempt: a retried call starts its answer again with a higher attempt. */
  readonly attempt: number;
}

/** What travels beside a request besides its abort signal. */
export interface LlmCallOptions {
  /**
   * Called with each piece of answer text as it arrives (streaming adapters only). Deltas are a
   * live view: the complete response is what counts, is journaled and is replayed.
   */
  readonly onDelta?: (delta: LlmDelta) => void;
  /** Which journaled call this is (run, effect key, calling actor): lets a wrapper label its deltas. */
  readonly call?: { readonly runId: string; readonly key: string; readonly actor: string; readonly tenant?: string };
  /**
   * Called once if the call has to wait for capacity under its profile's shared limits, before it
   * waits (awaited: the caller journals it). See `withLimits`.
   */
  readonly onThrottled?: (t: ThrottleInfo) => void | Promise<void>;
  /**
   * What an HTTP adapter does with a 429: retry it (its policy, the default), or throw it at once
   * as `AO_LLM_RATE_LIMITED` (details: `status`, `retryAfterMs`) for the caller to retry through
   * its limiter (`withLimits` does: a retry sent past the limiter would take a turn of another call).
   */
  readonly rateLimited?: 'retry' | 'throw';
}

/**
 * Check an adapter's output against {@link LlmResponseSchema}.
 * @throws AoError `AO_LLM_OUTPUT_INVALID`, `field` naming the first failing field.
 */
export function parseLlmResponse(raw: unknown, provider: string): LlmResponse {
  const r = LlmResponseSchema.safeParse(raw);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => ({ path: zodIssuePath(i) ?? '', message: i.message }));
  const field = zodIssuePath(r.error.issues[0]);
  throw new AoError(
    'AO_LLM_OUTPUT_INVALID',
    `LLM provider "${provider}" returned an invalid response: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`,
    { ...(field === undefined ? {} : { field }), details: { provider, issues } },
  );
}

/**
 * A provider-neutral token estimate: one token per four characters, at least one for any
 * non-empty text. Budgets use it where a provider reports no usage.
 *
 * @example estimateTokens('hello world') // 3
 */
export function estimateTokens(text: string): number {
  return estimateTokensOfLength(text.length);
}

function estimateTokensOfLength(chars: number): number {
  return chars === 0 ? 0 : Math.max(1, Math.ceil(chars / 4));
}
