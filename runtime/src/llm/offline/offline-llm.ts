import { systemClock, type Clock } from '../../clock/mod.js';
import { estimateTokens, type LlmPort, type LlmRequest, type LlmResponse, type ToolCall } from '../port.js';
import { generateArgs } from './args.js';
import { composeAnswer } from './answer.js';
import { hash8 } from './digest.js';
import { parsePrompt } from './prompt.js';

export interface OfflineLlmOptions {
  /** Simulated latency of every call, in ms (default 0). Aborting the signal cuts it short. */
  readonly latencyMs?: number;
  /** Model name reported in responses (default `offline-1`). */
  readonly model?: string;
  /** Clock the latency is slept on; inject a simulated one to test without waiting. */
  readonly clock?: Clock;
}

/**
 * A deterministic stand-in for a model, so graphs run with no network and no key: the same
 * request always gives the same response and token counts (no randomness, no clock reads).
 *
 * It reads the agent loop's prompt format. With tools offered and no tool result yet, it calls
 * every offered tool once with arguments generated to fit the tool's JSON schema; otherwise it
 * writes a final answer that names the node and digests the run input, upstream outputs and tool
 * results. A reviewer told to reply `APPROVED` says `REVISE:` on iteration 1 and `APPROVED` after.
 *
 * @example
 * ```ts
 * const llm = new OfflineLlm({ latencyMs: 20 });
 * const res = await llm.complete({ profile: 'default', maxTokens: 256, messages: [
 *   { role: 'system', content: 'Summarise the sources.' },
 *   { role: 'user', content: 'Node: summarise (pipeline)\nRun input:\n{"topic":"actors"}' },
 * ] });
 * res.message.content; // "[offline offline-1] summarise (pipeline): answering ..."
 * ```
 */
export class OfflineLlm implements LlmPort {
  readonly provider = 'offline';
  private readonly latencyMs: number;
  private readonly model: string;
  private readonly clock: Clock;

  constructor(opts: OfflineLlmOptions = {}) {
    this.latencyMs = Math.max(0, opts.latencyMs ?? 0);
    this.model = opts.model ?? 'offline-1';
    this.clock = opts.clock ?? systemClock;
  }

  async complete(req: LlmRequest, signal?: AbortSignal): Promise<LlmResponse> {
    throwIfAborted(signal);
    if (this.latencyMs > 0) {
      try {
        await this.clock.sleep(this.latencyMs, signal);
      } catch (e) {
        throwIfAborted(signal);
        throw e;
      }
    }
    return this.respond(req);
  }

  private respond(req: LlmRequest): LlmResponse {
    const model = req.model ?? this.model;
    const inputTokens = estimateTokens(
      req.messages.map((m) => (m.role === 'assistant' && m.toolCalls?.length ? `${m.content}${JSON.stringify(m.toolCalls)}` : m.content)).join('\n') +
        (req.tools?.length ? JSON.stringify(req.tools) : ''),
    );
    const ctx = parsePrompt(req.messages);

    const tools = req.tools ?? [];
    if (tools.length > 0 && !req.messages.some((m) => m.role === 'tool')) {
      const toolCalls: ToolCall[] = tools.map((t) => {
        const args = generateArgs(t.parameters, ctx);
        return { id: `call_${hash8([t.name, args, ctx.nodeId, ctx.input ?? null, ctx.iteration, ctx.branch ?? null])}`, name: t.name, arguments: args };
      });
      const outputTokens = estimateTokens(JSON.stringify(toolCalls));
      // A real model cut off mid-call leaves no usable call; report that instead of a broken one.
      if (outputTokens > req.maxTokens) return this.response(model, '', [], inputTokens, req.maxTokens, 'length');
      return this.response(model, '', toolCalls, inputTokens, outputTokens, 'tool_calls');
    }

    const text = composeAnswer(ctx, model);
    if (estimateTokens(text) > req.maxTokens) {
      const cut = text.slice(0, req.maxTokens * 4);
      return this.response(model, cut, [], inputTokens, estimateTokens(cut), 'length');
    }
    return this.response(model, text, [], inputTokens, estimateTokens(text), 'stop');
  }

  private response(
    model: string,
    content: string,
    toolCalls: ToolCall[],
    inputTokens: number,
    outputTokens: number,
    finishReason: LlmResponse['finishReason'],
  ): LlmResponse {
    return { model, message: { content, toolCalls }, usage: { inputTokens, outputTokens }, finishReason };
  }
}

/** Reject the way fetch and the SDKs do: an error named `AbortError`, the signal's reason as cause. */
function throwIfAborted(signal: AbortSignal | undefined): void {
  if (!signal?.aborted) return;
  const err = new Error('The LLM call was aborted', { cause: signal.reason });
  err.name = 'AbortError';
  throw err;
}
