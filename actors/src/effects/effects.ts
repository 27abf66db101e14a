import { AoError, InterruptAnswerSchema, isAoError, schemaJson } from '@ao/graphs';
import { actorPath, addUsage, captureContent, contentHash, describeChange, emitterOf, emptyUsage, endSpan, estimateTokens, gistOf, meters, parseLlmResponse, redactArgs, SpanKind, startChildSpan, toolSecrets } from '@ao/runtime';
import type { ActorPath, Attributes, Envelope, ErrorInfo, LlmRequest, LlmResponse, Span, ToolSecrets, TraceContext, Usage, WaitInfo } from '@ao/runtime';
import { replayAttr } from '../telemetry.js';
import { priceOf } from '../budget/ledger.js';
import type { BudgetRequest } from '../budget/ledger.js';
import type { Payload } from '../messages.js';
import { draft } from '../services.js';
import { openArgs, sealOutcome } from './secrets.js';
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

/** What identifies an LLM request for replay: its normalised content (the hash stored with it). */
function llmRequestContent(r: LlmRequest) {
  return { profile: r.profile, model: r.model ?? null, maxTokens: r.maxTokens, temperature: r.temperature ?? null, messages: r.messages, tools: r.tools ?? [] };
}

/**
 * The one path for side effects of an actor: every LLM and tool call is a named, journaled step
 * with a key `actorPath/n` (n counts this actor's effects; the same in a replay of the run) and
 * an idempotency key `runId/actorPath/n` given to tools, recorded as a request envelope before it
 * runs and a result envelope after.
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

  /** The trace context its envelopes carry: the node's span (or the run's, without one). */
  private readonly trace: TraceContext;

  constructor(
    private readonly s: RunServices,
    private readonly path: ActorPath,
    private readonly causationId: string,
    private readonly node: string,
    /** The node's span: LLM and tool call spans are its children. */
    private readonly span?: { span: Span; trace: TraceContext },
  ) {
    this.trace = span?.trace ?? s.trace;
  }

  private attrs(extra: Attributes = {}): Attributes {
    return { 'ao.graph': String(this.s.spanAttributes['ao.graph']), 'ao.node': this.node, ...replayAttr(this.s), ...extra };
  }

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
    // Staged: the request and the budget's decision commit with the call they approve.
    await this.emit(this.path, BUDGET_PATH, 'budget.request', req, `${req.key}/budget`, true);
    const first = await reply;
    if (first.type !== 'budget.held') return first;
    // A soft limit: a person decides; the final answer to the same request comes when they have.
    return this.s.awaitReply(this.s.journal.idOf(`${req.key}/budget`), Infinity, signal);
  }

  private refusal(env: Envelope, span?: Span): AoError {
    const p = env.payload as Payload<'budget.refused'>;
    meters().refusals.add(1, this.attrs({ limit: p.limit }));
    span?.addEvent('budget.refused', { 'ao.budget.limit': p.limit, 'ao.budget.scope': p.scope, 'ao.budget.value': p.value, 'ao.budget.used': p.used, 'ao.budget.stop': p.stop, ...(p.tool ? { 'gen_ai.tool.name': p.tool } : {}) });
    const what = p.limit === 'perTool' ? `${p.tool} calls` : p.limit;
    return new AoError(p.stop ? 'AO_BUDGET_EXCEEDED' : 'AO_BUDGET_TOOL_CAP', `${p.scope === 'run' ? 'the run' : p.scope} has no ${what} left (${p.used} used of ${p.value})`, {
      details: { limit: p.limit, scope: p.scope, value: p.value, used: p.used, actor: this.path, ...(p.tool ? { tool: p.tool } : {}) },
    });
  }

  private key(): string {
    this.n += 1;
    return `${this.path}/${this.n}`;
  }

  /**
   * In a recorded replay that has diverged, nothing runs live: the replay is over, only the
   * divergence matters. (A lenient replay goes on live.)
   */
  private guardReplay(): void {
    const r = this.s.journal.replay;
    if (r?.mode === 'recorded' && r.divergence) {
      throw new AoError('AO_REPLAY_DIVERGED', `the replay diverged at step ${r.divergence.step} (${r.divergence.actor}); no more calls are made`, { retryable: false });
    }
  }

  /**
   * A replay serving recordings checks the request before anything is asked: a request whose
   * content hash differs from the original's is a divergence, reported as a readable diff.
   */
  private async checkRequest(key: string, type: 'llm.request' | 'tool.call', content: Record<string, unknown>, hash: string): Promise<void> {
    const r = this.s.journal.replay;
    const rec = this.s.journal.recording(`${key}/${type === 'llm.request' ? 'req' : 'call'}`);
    if (!r?.serving || !rec) return;
    const p = rec.payload as { hash?: string } & Record<string, unknown>;
    if (p.hash === hash) return;
    const before = Object.fromEntries(Object.keys(content).map((k) => [k, p[k]]));
    const diff = describeChange(before, content);
    await this.s.journal.diverged({
      step: -1,
      actor: emitterOf({ from: this.path, to: rec.to }),
      expected: gistOf(rec, [r.of, r.runId]),
      actual: { seq: 0, type, from: this.path, to: rec.to, payload: { key, ...content, hash } },
      diff: diff.length ? [`${type} changed:`, ...diff] : [`${type}: same fields, different content hash (tool schemas or parameters changed)`],
    });
  }

  private emit(from: ActorPath, to: ActorPath, type: string, payload: unknown, key: string, stage = false) {
    return this.emitAll([{ from, to, type, payload, key }], stage);
  }

  /**
   * Several envelopes in one journal append: one commit, or (`stage`) none of its own: they ride
   * in the run's next commit. Durability points are an effect's intent (its request, with the
   * budget's grant staged before it) and what cannot be re-derived after a crash; a result the
   * effect's class lets us make again (an LLM answer, a pure, read or idempotent tool's result)
   * and its settlement are staged.
   */
  private emitAll(items: Array<{ from: ActorPath; to: ActorPath; type: string; payload: unknown; key: string }>, stage = false) {
    return this.s.journal.append(
      items.map((i) => draft({ runId: this.s.runId, trace: this.trace }, { ...i, causationId: this.causationId })),
      stage ? { stage } : {},
    );
  }

  /**
   * Ask a person and wait for the answer (the node's `interrupt`). The question is an effect like
   * any other: registered with the run supervisor under this actor's next effect key (the wait's
   * stable id), and answered by a `wait.resolved` envelope. While nobody answers, the run is
   * passivated; when the answer comes this actor runs again from its start message, reads every
   * earlier effect back from the log and finds the answer there: nothing before the question is
   * done twice.
   */
  async interrupt(q: { prompt: string; payload?: unknown }, signal: AbortSignal): Promise<Payload<'wait.resolved'>> {
    signal.throwIfAborted();
    const key = this.key();
    const answered = this.s.journal.recorded(`${key}/resolved`);
    if (answered) return answered.payload as Payload<'wait.resolved'>;
    const opts = this.s.def.node(this.node)?.interrupt;
    const since = new Date(this.s.clock.now());
    const wait: WaitInfo = {
      id: key,
      node: this.node,
      kind: 'interrupt',
      prompt: q.prompt,
      ...(q.payload !== undefined ? { payload: q.payload } : {}),
      schema: schemaJson(opts?.schema ?? InterruptAnswerSchema),
      since: since.toISOString(),
      ...(opts?.timeoutSec !== undefined ? { timeoutAt: since.getTime() + opts.timeoutSec * 1000 } : {}),
      countWallClock: opts?.countWallClock ?? false,
      actor: this.path,
    };
    // No timeout of its own: the wait's timeout (if any) is an answer too.
    const reply = this.s.awaitReply(this.s.journal.idOf(`${key}/wait`), Infinity, signal);
    reply.catch(() => undefined);
    await this.emit(this.path, actorPath('supervisor'), 'wait.registered', wait, `${key}/wait`);
    return (await reply).payload as Payload<'wait.resolved'>;
  }

  /** One LLM call, as a `chat` span (GenAI semantic conventions) under the node's span. */
  async llm(asked: LlmRequest, signal: AbortSignal): Promise<LlmResponse> {
    const model = asked.model ?? asked.profile;
    const span = startChildSpan(
      this.span?.span,
      `chat ${model}`,
      {
        ...this.s.spanAttributes,
        'gen_ai.operation.name': 'chat',
        'gen_ai.system': this.s.llm(asked.profile).provider,
        'gen_ai.request.model': model,
        'gen_ai.request.max_tokens': asked.maxTokens,
        ...(asked.temperature !== undefined ? { 'gen_ai.request.temperature': asked.temperature } : {}),
        ...(captureContent() ? { 'gen_ai.input.messages': JSON.stringify(asked.messages) } : {}),
      },
      SpanKind.CLIENT,
    );
    try {
      const res = await this.llmCall(asked, signal, span);
      span.setAttributes({
        'gen_ai.response.model': res.model,
        'gen_ai.usage.input_tokens': res.usage.inputTokens,
        'gen_ai.usage.output_tokens': res.usage.outputTokens,
        'gen_ai.response.finish_reasons': [res.finishReason],
        ...(captureContent() ? { 'gen_ai.output.messages': JSON.stringify([{ role: 'assistant', content: res.message.content, toolCalls: res.message.toolCalls }]) } : {}),
      });
      const m = meters();
      m.tokens.add(res.usage.inputTokens, this.attrs({ 'gen_ai.request.model': model, 'gen_ai.token.type': 'input' }));
      m.tokens.add(res.usage.outputTokens, this.attrs({ 'gen_ai.request.model': model, 'gen_ai.token.type': 'output' }));
      endSpan(span);
      return res;
    } catch (e) {
      endSpan(span, errorInfo(e, 'AO_LLM_FAILED'));
      throw e;
    }
  }

  private async llmCall(asked: LlmRequest, signal: AbortSignal, span: Span): Promise<LlmResponse> {
    // A stopped or timed-out actor starts nothing new (its work may still be unwinding).
    signal.throwIfAborted();
    this.guardReplay();
    const key = this.key();
    const endpoint = actorPath('llm', asked.profile);
    const model = asked.model ?? asked.profile;
    const hash = contentHash(llmRequestContent(asked));
    await this.checkRequest(key, 'llm.request', { profile: asked.profile, model: asked.model, messages: asked.messages, tools: (asked.tools ?? []).map((t) => t.name) }, hash);
    this.guardReplay();
    // The maximum cost: every prompt character counted (JSON included), plus all the output allowed.
    const promptTokens = estimateTokens(JSON.stringify(asked.messages) + JSON.stringify(asked.tools ?? []));
    span.setAttribute('ao.effect.key', key);
    const decision = await this.approve({ kind: 'llm', key, node: this.node, actor: this.path, promptTokens, maxTokens: asked.maxTokens, model }, signal);
    if (decision.type !== 'budget.granted') throw this.refusal(decision, span);
    const granted = (decision.payload as Payload<'budget.granted'>).maxTokens;
    const req: LlmRequest = granted ? { ...asked, maxTokens: granted } : asked;
    await this.emit(this.path, endpoint, 'llm.request', {
      key,
      profile: req.profile,
      ...(req.model ? { model: req.model } : {}),
      maxTokens: req.maxTokens,
      messages: req.messages,
      tools: (req.tools ?? []).map((t) => t.name),
      hash,
    }, `${key}/req`);
    const recorded = this.s.journal.recorded(`${key}/res`);
    span.setAttribute('ao.effect.source', recorded ? 'log' : this.s.journal.recording(`${key}/res`) ? 'recording' : 'live');
    if (recorded) {
      await this.emit(this.path, BUDGET_PATH, 'budget.settle', settlement(recorded.payload as RecordedLlm, this.s.prices), `${key}/settle`, true);
      return this.settle(recorded.payload as RecordedLlm);
    }
    const failed = this.s.journal.recorded(`${key}/fail`);
    if (failed) throw new AoError('AO_LLM_FAILED', (failed.payload as { error: ErrorInfo }).error.message, { retryable: true });
    // A recorded replay: the original's answer (or failure) instead of a call.
    const replayed = this.s.journal.recording(`${key}/res`);
    if (replayed) {
      const payload = replayed.payload as RecordedLlm;
      await this.emitAll([
        { from: endpoint, to: this.path, type: 'llm.response', payload, key: `${key}/res` },
        { from: this.path, to: BUDGET_PATH, type: 'budget.settle', payload: settlement(payload, this.s.prices), key: `${key}/settle` },
      ]);
      return this.settle(payload);
    }
    const replayedFailure = this.s.journal.recording(`${key}/fail`);
    if (replayedFailure) {
      const info = (replayedFailure.payload as { error: ErrorInfo }).error;
      await this.emitAll([
        { from: this.path, to: BUDGET_PATH, type: 'budget.release', payload: { key }, key: `${key}/release` },
        { from: endpoint, to: this.path, type: 'llm.failed', payload: { key, error: info }, key: `${key}/fail` },
      ]);
      throw new AoError('AO_LLM_FAILED', info.message, { retryable: true });
    }
    this.guardReplay();
    const port = this.s.llm(req.profile);
    let res: LlmResponse;
    try {
      res = parseLlmResponse(await port.complete(req, signal, { call: { runId: this.s.runId, key, actor: this.path } }), port.provider);
    } catch (e) {
      const err = signal.aborted && isAoError(signal.reason) ? signal.reason : e;
      // A stopped actor writes nothing more (its run is ending); a timed-out one frees its grant.
      if (!stopped(signal)) {
        await this.emit(this.path, BUDGET_PATH, 'budget.release', { key }, `${key}/release`, true);
      }
      if (signal.aborted) throw err; // stopped or timed out: not the model's failure, nothing to record
      const info = errorInfo(err, 'AO_LLM_FAILED');
      await this.emit(endpoint, this.path, 'llm.failed', { key, error: info }, `${key}/fail`, true);
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
    // The answer and its settlement commit together, with the run's next durable point (a crash
    // before it makes the call again, under the same key: the grant is in the log).
    await this.emitAll(
      [
        { from: endpoint, to: this.path, type: 'llm.response', payload, key: `${key}/res` },
        { from: this.path, to: BUDGET_PATH, type: 'budget.settle', payload: settlement(payload, this.s.prices), key: `${key}/settle` },
      ],
      true,
    );
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

  /**
   * Call a tool, as an `execute_tool` span under the node's span; a bad argument or a failing
   * handler is an outcome, not a throw (the model sees it). Only the tools the node lists may be
   * called (AO_TOOL_NOT_ALLOWED otherwise, whoever asks). Arguments marked secret are redacted in
   * the log and the span; secret parts of the result are sealed and replaced by handles.
   */
  async tool(node: string, name: string, args: unknown, signal: AbortSignal): Promise<ToolOutcome> {
    const allowed = this.s.def.node(this.node)?.tools ?? [];
    if (!allowed.includes(name)) {
      // Decided from the graph alone, so a re-run decides the same: nothing to journal.
      return { ok: false, error: { code: 'AO_TOOL_NOT_ALLOWED', message: `node "${this.node}" may not call tool "${name}"; it may call: ${allowed.join(', ') || 'none'}` } };
    }
    const sec = toolSecrets(this.s.tools.get(name));
    const shown = redactArgs(sec, args);
    const span = startChildSpan(this.span?.span, `execute_tool ${name}`, {
      ...this.s.spanAttributes,
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': name,
      ...(captureContent() ? { 'gen_ai.tool.call.arguments': JSON.stringify(shown ?? null) } : {}),
    });
    try {
      const outcome = await this.toolCall(node, name, args, shown, sec, signal, span);
      span.setAttribute('ao.tool.outcome', outcome.ok ? 'ok' : 'error');
      if (captureContent() && outcome.ok) span.setAttribute('gen_ai.tool.call.result', JSON.stringify(outcome.result ?? null));
      meters().toolCalls.add(1, this.attrs({ 'gen_ai.tool.name': name, outcome: outcome.ok ? 'ok' : 'error' }));
      endSpan(span, outcome.ok ? undefined : outcome.error);
      return outcome;
    } catch (e) {
      span.setAttribute('ao.tool.outcome', 'refused_or_failed');
      meters().toolCalls.add(1, this.attrs({ 'gen_ai.tool.name': name, outcome: 'failed' }));
      endSpan(span, errorInfo(e, 'AO_TOOL_FAILED'));
      throw e;
    }
  }

  private async toolCall(node: string, name: string, args: unknown, shown: unknown, sec: ToolSecrets, signal: AbortSignal, span: Span): Promise<ToolOutcome> {
    signal.throwIfAborted();
    this.guardReplay();
    const key = this.key();
    const endpoint = actorPath('tool', name.replace(/[^A-Za-z0-9_.@-]/g, '_'));
    span.setAttributes({ 'ao.effect.key': key, 'ao.idempotency_key': `${this.s.runId}/${key}` });
    const def = this.s.tools.get(name);
    // The hash covers the arguments as given (literal secrets included, handles as handles): a
    // recorded replay compares true arguments while the log shows them redacted.
    const hash = contentHash({ name, args: args ?? null, schema: def ? this.s.tools.specs([name])[0]!.parameters : null });
    await this.checkRequest(key, 'tool.call', { name, args: shown }, hash);
    this.guardReplay();
    // A replay never calls an unsafe tool live unless it was explicitly allowed (a recorded result is fine).
    const allow = this.s.replay?.overrides?.allowUnsafe;
    const effect = this.s.tools.effectOf(name, args);
    if (this.s.replay && effect === 'unsafe' && !this.s.journal.recording(`${key}/result`) && !this.s.journal.recorded(`${key}/result`) && allow !== true && !allow?.includes(name)) {
      throw new AoError('AO_REPLAY_UNSAFE_TOOL', `unsafe tool "${name}" is not called live in a replay; allow it with overrides.allowUnsafe: ["${name}"]`, {
        details: { tool: name, key },
        retryable: false,
      });
    }
    const decision = await this.approve({ kind: 'tool', key, node: this.node, actor: this.path, tool: name }, signal);
    if (decision.type !== 'budget.granted') {
      const refused = this.refusal(decision, span);
      // A per-tool cap refuses this tool only: the model hears why and may go on with others.
      if (refused.code === 'AO_BUDGET_TOOL_CAP') return { ok: false, error: { code: refused.code, message: refused.message } };
      throw refused;
    }
    const inFlight = this.s.journal.recorded(`${key}/call`) !== undefined;
    await this.emit(this.path, endpoint, 'tool.call', { key, name, args: shown, hash }, `${key}/call`);
    const recorded = this.s.journal.recorded(`${key}/result`) ?? this.s.journal.recording(`${key}/result`);
    const ctx = { runId: this.s.runId, nodeId: node, idempotencyKey: `${this.s.runId}/${key}`, signal };
    let outcome: ToolOutcome | undefined = recorded ? outcomeOf(recorded.payload) : undefined;
    span.setAttribute('ao.effect.source', this.s.journal.recorded(`${key}/result`) ? 'log' : recorded ? 'recording' : 'live');
    if (!outcome) this.guardReplay();
    let real = args;
    if (!outcome) {
      // Handles become values only here, just before the call: nothing before this line (log,
      // span, hash, budget) ever held the secret.
      const opened = await openArgs(this.s.secrets, sec, name, args);
      if (opened.ok) real = opened.args;
      else outcome = opened;
    }
    if (!outcome && inFlight) outcome = await this.reconcile(name, real, shown, effect, sec, ctx, endpoint, key);
    if (!outcome) {
      try {
        outcome = { ok: true, result: await sealOutcome(this.s.secrets, sec, key, await this.s.tools.call(name, real, ctx)) };
      } catch (e) {
        if (signal.aborted) {
          // Timed out: the call was made, so it counts (the grant is settled, never leaked). A
          // stopped actor writes nothing more: its run is ending.
          if (!stopped(signal)) {
            await this.emit(this.path, BUDGET_PATH, 'budget.settle', { key, tokens: 0, usd: 0, tool: name }, `${key}/settle`, true);
          }
          throw signal.reason;
        }
        outcome = { ok: false, error: errorInfo(e, 'AO_TOOL_FAILED') };
      }
    }
    this.usage = addUsage(this.usage, { toolCalls: 1, perTool: { [name]: 1 } });
    // An unsafe tool's result is durable at once (lost, its call could not be made again); any
    // other's rides in the next commit (lost, it is made again under the same idempotency key).
    await this.emitAll(
      [
        { from: endpoint, to: this.path, type: 'tool.result', payload: { key, name, ...outcome }, key: `${key}/result` },
        { from: this.path, to: BUDGET_PATH, type: 'budget.settle', payload: { key, tokens: 0, usd: 0, tool: name }, key: `${key}/settle` },
      ],
      effect !== 'unsafe',
    );
    return outcome;
  }

  /** A tool call was in flight at a crash: decide whether calling it again is safe. */
  private async reconcile(
    name: string,
    args: unknown,
    shown: unknown,
    effect: string | undefined,
    sec: ToolSecrets,
    ctx: { runId: string; nodeId: string; idempotencyKey: string; signal: AbortSignal },
    endpoint: ActorPath,
    key: string,
  ): Promise<ToolOutcome | undefined> {
    const def = this.s.tools.get(name);
    if (!def || effect !== 'unsafe') return undefined; // pure, read, idempotent: call again, same key
    if (def.status) {
      const st = await def.status(this.s.tools.validate(name, args) as never, ctx);
      await this.emit(endpoint, this.path, 'effect.reconciled', { key, name, done: st.done }, `${key}/reconciled`);
      return st.done ? { ok: true, result: await sealOutcome(this.s.secrets, sec, key, st.result) } : undefined;
    }
    const message = `unsafe tool "${name}" was in flight when the process stopped; whether it took effect is unknown (idempotency key ${ctx.idempotencyKey})`;
    await this.emit(endpoint, this.path, 'effect.unknown_outcome', { key, name, args: shown }, `${key}/unknown`);
    throw new AoError('AO_EFFECT_UNKNOWN_OUTCOME', message, { details: { key, idempotencyKey: ctx.idempotencyKey, tool: name } });
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
