import { AoError, isAoError } from '@ao/graphs';
import { actorPath, addUsage, emptyUsage, estimateTokens, parseLlmResponse } from '@ao/runtime';
import type { ActorPath, Envelope, ErrorInfo, LlmRequest, LlmResponse, Usage } from '@ao/runtime';
import { priceOf } from '../budget/ledger.js';
import type { BudgetRequest } from '../budget/ledger.js';
import type { Payload } from '../messages.js';
import { draft } from '../services.js';
import type { RunServices } from '../services.js';

export type ToolOutcome = { ok: true; result: unknown } | { ok: false; error: ErrorInfo };

/** Aborted because the actor was stopped (its run is ending): such an actor writes nothing more. */
const stopped = (signal: AbortSignal): boolean => signal.aborted && isAoError(signal.reason) && signal.reason.code === 'AO_NODE_CANCELLED';

/** Where every run's budget actor lives. */
export const BUDGET_PATH = actorPath('supervisor', 'budget');
/** Fail closed: a budget actor that does not answer in this time approves nothing. */
export const BUDGET_TIMEOUT_MS = 10_000;

export function errorInfo(e: unknown, fallback: ErrorInfo['code'] = 'AO_INTERNAL'): ErrorInfo {
  if (isAoError(e)) return { code: e.code, message: e.message, ...(e.field ? { details: { field: e.field } } : {}) };
  return { code: fallback, message: e instanceof Error ? e.message : String(e) };
}

/**
 * The one path for side effects of an actor: every LLM and tool call is a named, journaled step
 * with an idempotency key `runId/actorPath/n` (n counts this actor's effects), recorded as a
 * request envelope before it runs and a result envelope after.
 *
 * After a crash the actor runs again from its start message, and the same calls come in the same
 * order with the same keys: a call whose result is in the log is not made again, its recorded
 * result is returned. A call that was in flight (request recorded, no result) is made again with
 * the same key when that is safe (LLM calls; `pure`, `read` and `idempotent` tools). An `unsafe`
 * tool is asked for its `status`, or the call fails with AO_EFFECT_UNKNOWN_OUTCOME: never blindly
 * repeated.
 */
export class Effects {
  private n = 0;
  usage: Usage = emptyUsage();

  constructor(
    private readonly s: RunServices,
    private readonly path: ActorPath,
    private readonly causationId: string,
    private readonly node: string,
  ) {}

  /**
   * Ask the budget actor before a call. A decision already in the log (the call is being replayed
   * after a crash) is read back instead of asked again.
   */
  private async approve(req: BudgetRequest, signal: AbortSignal): Promise<Envelope> {
    const recorded = this.s.journal.recorded(`${req.key}/grant`);
    if (recorded) return recorded;
    const reply = this.s.awaitReply(this.s.journal.idOf(`${req.key}/budget`), BUDGET_TIMEOUT_MS, signal);
    // If the request cannot even be written (the run is ending), the reply is never awaited:
    // its later rejection must not go unhandled (that would take the process down).
    reply.catch(() => undefined);
    await this.emit(this.path, BUDGET_PATH, 'budget.request', req, `${req.key}/budget`);
    return reply;
  }

  private refusal(env: Envelope): AoError {
    const p = env.payload as Payload<'budget.refused'>;
    const what = p.limit === 'perTool' ? `${p.tool} calls` : p.limit;
    return new AoError(p.stop ? 'AO_BUDGET_EXCEEDED' : 'AO_BUDGET_TOOL_CAP', `${p.scope === 'run' ? 'the run' : p.scope} has no ${what} left (${p.used} used of ${p.value})`, {
      details: { limit: p.limit, scope: p.scope, value: p.value, used: p.used, actor: this.path, ...(p.tool ? { tool: p.tool } : {}) },
    });
  }

  private key(): string {
    this.n += 1;
    return `${this.s.runId}/${this.path}/${this.n}`;
  }

  private emit(from: ActorPath, to: ActorPath, type: string, payload: unknown, key: string) {
    return this.emitAll([{ from, to, type, payload, key }]);
  }

  /** Several envelopes in one journal append: one commit. */
  private emitAll(items: Array<{ from: ActorPath; to: ActorPath; type: string; payload: unknown; key: string }>) {
    return this.s.journal.append(items.map((i) => draft(this.s, { ...i, causationId: this.causationId })));
  }

  async llm(asked: LlmRequest, signal: AbortSignal): Promise<LlmResponse> {
    // A stopped or timed-out actor starts nothing new (its work may still be unwinding).
    signal.throwIfAborted();
    const key = this.key();
    const endpoint = actorPath('llm', asked.profile);
    const model = asked.model ?? asked.profile;
    // The maximum cost: every prompt character counted (JSON included), plus all the output allowed.
    const promptTokens = estimateTokens(JSON.stringify(asked.messages) + JSON.stringify(asked.tools ?? []));
    const decision = await this.approve({ kind: 'llm', key, node: this.node, actor: this.path, promptTokens, maxTokens: asked.maxTokens, model }, signal);
    if (decision.type !== 'budget.granted') throw this.refusal(decision);
    const granted = (decision.payload as Payload<'budget.granted'>).maxTokens;
    const req: LlmRequest = granted ? { ...asked, maxTokens: granted } : asked;
    await this.emit(this.path, endpoint, 'llm.request', {
      key,
      profile: req.profile,
      ...(req.model ? { model: req.model } : {}),
      maxTokens: req.maxTokens,
      messages: req.messages,
      tools: (req.tools ?? []).map((t) => t.name),
    }, `${key}/req`);
    const recorded = this.s.journal.recorded(`${key}/res`);
    if (recorded) {
      await this.emit(this.path, BUDGET_PATH, 'budget.settle', settlement(recorded.payload as RecordedLlm, this.s.prices), `${key}/settle`);
      return this.settle(recorded.payload as RecordedLlm);
    }
    const failed = this.s.journal.recorded(`${key}/fail`);
    if (failed) throw new AoError('AO_LLM_FAILED', (failed.payload as { error: ErrorInfo }).error.message, { retryable: true });
    const port = this.s.llm(req.profile);
    let res: LlmResponse;
    try {
      res = parseLlmResponse(await port.complete(req, signal), port.provider);
    } catch (e) {
      const err = signal.aborted && isAoError(signal.reason) ? signal.reason : e;
      // A stopped actor writes nothing more (its run is ending); a timed-out one frees its grant.
      if (!stopped(signal)) {
        await this.emit(this.path, BUDGET_PATH, 'budget.release', { key }, `${key}/release`);
      }
      if (signal.aborted) throw err; // stopped or timed out: not the model's failure, nothing to record
      const info = errorInfo(err, 'AO_LLM_FAILED');
      await this.emit(endpoint, this.path, 'llm.failed', { key, error: info }, `${key}/fail`);
      throw isAoError(err) ? err : new AoError('AO_LLM_FAILED', info.message, { cause: e, retryable: true });
    }
    const payload: RecordedLlm = {
      key,
      model: res.model,
      content: res.message.content,
      toolCalls: res.message.toolCalls,
      usage: res.usage,
      finishReason: res.finishReason,
    };
    // The answer and its settlement commit together.
    await this.emitAll([
      { from: endpoint, to: this.path, type: 'llm.response', payload, key: `${key}/res` },
      { from: this.path, to: BUDGET_PATH, type: 'budget.settle', payload: settlement(payload, this.s.prices), key: `${key}/settle` },
    ]);
    return this.settle(payload);
  }

  private settle(p: RecordedLlm): LlmResponse {
    this.usage = addUsage(this.usage, {
      inputTokens: p.usage.inputTokens,
      outputTokens: p.usage.outputTokens,
      totalTokens: p.usage.inputTokens + p.usage.outputTokens,
      llmCalls: 1,
    });
    return { model: p.model, message: { content: p.content, toolCalls: p.toolCalls }, usage: p.usage, finishReason: p.finishReason };
  }

  /** Call a tool; a bad argument or a failing handler is an outcome, not a throw (the model sees it). */
  async tool(node: string, name: string, args: unknown, signal: AbortSignal): Promise<ToolOutcome> {
    signal.throwIfAborted();
    const key = this.key();
    const endpoint = actorPath('tool', name.replace(/[^A-Za-z0-9_.@-]/g, '_'));
    const decision = await this.approve({ kind: 'tool', key, node: this.node, actor: this.path, tool: name }, signal);
    if (decision.type !== 'budget.granted') {
      const refused = this.refusal(decision);
      // A per-tool cap refuses this tool only: the model hears why and may go on with others.
      if (refused.code === 'AO_BUDGET_TOOL_CAP') return { ok: false, error: { code: refused.code, message: refused.message } };
      throw refused;
    }
    const inFlight = this.s.journal.recorded(`${key}/call`) !== undefined;
    await this.emit(this.path, endpoint, 'tool.call', { key, name, args }, `${key}/call`);
    const recorded = this.s.journal.recorded(`${key}/result`);
    const ctx = { runId: this.s.runId, nodeId: node, idempotencyKey: key, signal };
    let outcome: ToolOutcome | undefined = recorded ? outcomeOf(recorded.payload) : undefined;
    if (!outcome && inFlight) outcome = await this.reconcile(name, args, ctx, endpoint, key);
    if (!outcome) {
      try {
        outcome = { ok: true, result: await this.s.tools.call(name, args, ctx) };
      } catch (e) {
        if (signal.aborted) {
          // Timed out: the call was made, so it counts (the grant is settled, never leaked). A
          // stopped actor writes nothing more: its run is ending.
          if (!stopped(signal)) {
            await this.emit(this.path, BUDGET_PATH, 'budget.settle', { key, tokens: 0, usd: 0, tool: name }, `${key}/settle`);
          }
          throw signal.reason;
        }
        outcome = { ok: false, error: errorInfo(e, 'AO_TOOL_FAILED') };
      }
    }
    this.usage = addUsage(this.usage, { toolCalls: 1, perTool: { [name]: 1 } });
    await this.emitAll([
      { from: endpoint, to: this.path, type: 'tool.result', payload: { key, name, ...outcome }, key: `${key}/result` },
      { from: this.path, to: BUDGET_PATH, type: 'budget.settle', payload: { key, tokens: 0, usd: 0, tool: name }, key: `${key}/settle` },
    ]);
    return outcome;
  }

  /** A tool call was in flight at a crash: decide whether calling it again is safe. */
  private async reconcile(
    name: string,
    args: unknown,
    ctx: { runId: string; nodeId: string; idempotencyKey: string; signal: AbortSignal },
    endpoint: ActorPath,
    key: string,
  ): Promise<ToolOutcome | undefined> {
    const def = this.s.tools.get(name);
    if (!def || def.effect !== 'unsafe') return undefined; // pure, read, idempotent: call again, same key
    if (def.status) {
      const st = await def.status(this.s.tools.validate(name, args) as never, ctx);
      await this.emit(endpoint, this.path, 'effect.reconciled', { key, name, done: st.done }, `${key}/reconciled`);
      return st.done ? { ok: true, result: st.result } : undefined;
    }
    const message = `unsafe tool "${name}" was in flight when the process stopped; whether it took effect is unknown (key ${key})`;
    await this.emit(endpoint, this.path, 'effect.unknown_outcome', { key, name, args }, `${key}/unknown`);
    throw new AoError('AO_EFFECT_UNKNOWN_OUTCOME', message, { details: { key, tool: name } });
  }
}

interface RecordedLlm {
  key: string;
  model: string;
  content: string;
  toolCalls: LlmResponse['message']['toolCalls'];
  usage: LlmResponse['usage'];
  finishReason: LlmResponse['finishReason'];
}

/** What a finished LLM call spent, priced at the model that answered. */
function settlement(p: RecordedLlm, prices: RunServices['prices']) {
  const tokens = p.usage.inputTokens + p.usage.outputTokens;
  return { key: p.key, tokens, usd: priceOf(prices, p.model, p.usage.inputTokens, p.usage.outputTokens), model: p.model };
}

function outcomeOf(p: unknown): ToolOutcome {
  const r = p as { ok: boolean; result?: unknown; error?: ErrorInfo };
  return r.ok ? { ok: true, result: r.result } : { ok: false, error: r.error! };
}
