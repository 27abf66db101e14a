import { AoError, isAoError } from '@ao/graphs';
import { actorPath, addUsage, emptyUsage, parseLlmResponse } from '@ao/runtime';
import type { ActorPath, ErrorInfo, LlmRequest, LlmResponse, Usage } from '@ao/runtime';
import type { RunServices } from '../services.js';

export type ToolOutcome = { ok: true; result: unknown } | { ok: false; error: ErrorInfo };

export function errorInfo(e: unknown, fallback: ErrorInfo['code'] = 'AO_INTERNAL'): ErrorInfo {
  if (isAoError(e)) return { code: e.code, message: e.message, ...(e.field ? { details: { field: e.field } } : {}) };
  return { code: fallback, message: e instanceof Error ? e.message : String(e) };
}

/**
 * The one path for side effects of an actor: every LLM and tool call is a named, journaled step
 * with an idempotency key `runId/actorPath/n` (n counts this actor's effects), recorded as a
 * request envelope before it runs and a result envelope after. Budget approval, tracing and
 * recorded replay wrap this path in later issues.
 */
export class Effects {
  private n = 0;
  usage: Usage = emptyUsage();

  constructor(
    private readonly s: RunServices,
    private readonly path: ActorPath,
    private readonly causationId: string,
  ) {}

  private key(): string {
    this.n += 1;
    return `${this.s.runId}/${this.path}/${this.n}`;
  }

  private draft(from: ActorPath, to: ActorPath, type: string, payload: unknown) {
    return { runId: this.s.runId, from, to, type, payload, causationId: this.causationId, trace: this.s.trace };
  }

  async llm(req: LlmRequest, signal: AbortSignal): Promise<LlmResponse> {
    const key = this.key();
    const endpoint = actorPath('llm', req.profile);
    await this.s.journal.append([
      this.draft(this.path, endpoint, 'llm.request', {
        key,
        profile: req.profile,
        ...(req.model ? { model: req.model } : {}),
        maxTokens: req.maxTokens,
        messages: req.messages,
        tools: (req.tools ?? []).map((t) => t.name),
      }),
    ]);
    const port = this.s.llm(req.profile);
    let res: LlmResponse;
    try {
      res = parseLlmResponse(await port.complete(req, signal), port.provider);
    } catch (e) {
      const err = signal.aborted && isAoError(signal.reason) ? signal.reason : e;
      const info = errorInfo(err, 'AO_LLM_FAILED');
      await this.s.journal.append([this.draft(endpoint, this.path, 'llm.failed', { key, error: info })]);
      throw isAoError(err) ? err : new AoError('AO_LLM_FAILED', info.message, { cause: e, retryable: true });
    }
    this.usage = addUsage(this.usage, {
      inputTokens: res.usage.inputTokens,
      outputTokens: res.usage.outputTokens,
      totalTokens: res.usage.inputTokens + res.usage.outputTokens,
      llmCalls: 1,
    });
    await this.s.journal.append([
      this.draft(endpoint, this.path, 'llm.response', {
        key,
        model: res.model,
        content: res.message.content,
        toolCalls: res.message.toolCalls,
        usage: res.usage,
        finishReason: res.finishReason,
      }),
    ]);
    return res;
  }

  /** Call a tool; a bad argument or a failing handler is an outcome, not a throw (the model sees it). */
  async tool(node: string, name: string, args: unknown, signal: AbortSignal): Promise<ToolOutcome> {
    const key = this.key();
    const endpoint = actorPath('tool', name.replace(/[^A-Za-z0-9_.@-]/g, '_'));
    await this.s.journal.append([this.draft(this.path, endpoint, 'tool.call', { key, name, args })]);
    let outcome: ToolOutcome;
    try {
      const result = await this.s.tools.call(name, args, { runId: this.s.runId, nodeId: node, idempotencyKey: key, signal });
      outcome = { ok: true, result };
    } catch (e) {
      if (signal.aborted) throw signal.reason;
      outcome = { ok: false, error: errorInfo(e, 'AO_TOOL_FAILED') };
    }
    this.usage = addUsage(this.usage, { toolCalls: 1, perTool: { [name]: 1 } });
    await this.s.journal.append([this.draft(endpoint, this.path, 'tool.result', { key, name, ...outcome })]);
    return outcome;
  }
}
