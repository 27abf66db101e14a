import { actorPath, captureContent, meters, parseLlmResponse, promptTokenEstimate, SpanKind } from '@ao/runtime';
import type { LlmRequest, LlmResponse, ThrottleInfo, TurnExtras } from '@ao/runtime';
import { priceOf } from '../budget/ledger.js';
import type { RunServices } from '../services.js';
import { llmRequestHash } from './request-hash.js';
import { errorInfo } from './step.js';
import type { StepActor, StepSpec } from './step.js';

/** An LLM answer as `llm.response` records it. */
export interface RecordedLlm {
  key: string;
  model: string;
  content: string;
  toolCalls: LlmResponse['message']['toolCalls'];
  usage: LlmResponse['usage'];
  finishReason: LlmResponse['finishReason'];
}

/**
 * One LLM call as a step: `llm.request` to `llm/<profile>`, answered by `llm.response` or
 * `llm.failed`. Its budget reserves the whole prompt and all the output allowed; the grant may cap
 * the output. A failure is the call's, journaled and thrown (retryable). An answer is staged: lost
 * in a crash, the call is made again under the same key (its grant is in the log).
 */
export function llmStep(actor: StepActor, requested: LlmRequest, turn?: TurnExtras): StepSpec<LlmRequest, LlmResponse, RecordedLlm> {
  const { s, path, node } = actor;
  // A profile's `maxTokens` lowers what a node asks for (and so what the budget reserves).
  const cap = s.llm(requested.profile).maxOutputTokens;
  const asked = cap !== undefined && requested.maxTokens > cap ? { ...requested, maxTokens: cap } : requested;
  const model = asked.model ?? asked.profile;
  // What identifies the request for replay: the hash of its normalised content (./request-hash.ts).
  const hash = llmRequestHash(asked);
  const tools = (asked.tools ?? []).map((t) => t.name);
  return {
    kind: 'llm',
    name: model,
    endpoint: actorPath('llm', asked.profile),
    request: {
      type: 'llm.request',
      suffix: 'req',
      content: { profile: asked.profile, model: asked.model, messages: asked.messages, tools },
      hash,
      ...(turn ? { turn } : {}),
    },
    // The maximum cost: the prompt as the provider counts it (its port's count, else the runtime's
    // estimate from the JSON of the messages and tools), plus all the output allowed.
    async budget(key) {
      const port = s.llm(asked.profile);
      const promptTokens = port.countPromptTokens ? await port.countPromptTokens(asked) : promptTokenEstimate(asked);
      return { kind: 'llm', key, node, actor: path, promptTokens, maxTokens: asked.maxTokens, model };
    },
    granted(key, grant) {
      const req: LlmRequest = grant?.maxTokens ? { ...asked, maxTokens: grant.maxTokens } : asked;
      // The payload's own copy of the messages: the agent loop goes on appending to its array, and a
      // journaled envelope is read (the live stream, the bus) after that, never changed by it.
      return {
        input: req,
        intent: {
          type: 'llm.request',
          payload: {
            key,
            profile: req.profile,
            ...(req.model ? { model: req.model } : {}),
            maxTokens: req.maxTokens,
            messages: [...req.messages],
            tools,
            hash,
          },
        },
      };
    },
    result: { suffix: 'res', envelope: (p) => ({ type: 'llm.response', payload: p }) },
    failure: { code: 'AO_LLM_FAILED', type: 'llm.failed', suffix: 'fail' },
    // Read back from the log, the answer is not emitted again: only its settlement, which a crash
    // may have lost. A replay commits at once whatever it is asked (it stages nothing).
    journal: (source) => ({ result: source !== 'log', durable: source === 'recording' }),
    settle: (p) => settlement(p, s.prices),
    usage: (p) => ({
      inputTokens: p.usage.inputTokens,
      outputTokens: p.usage.outputTokens,
      totalTokens: p.usage.inputTokens + p.usage.outputTokens,
      llmCalls: 1,
    }),
    read: (recorded) => recorded as RecordedLlm,
    async live(req, step) {
      const port = s.llm(req.profile);
      const endpoint = actorPath('llm', req.profile);
      // Waiting for the profile's shared limits: journaled now (the wait is long enough to see live).
      const onThrottled = async (t: ThrottleInfo) => {
        meters().throttled.add(1, actor.attrs({ 'ao.llm.profile': t.profile, 'ao.llm.limit': t.limit, 'ao.llm.limit_scope': t.scope }));
        step.span?.addEvent('llm.throttled', { 'ao.llm.limit': t.limit, 'ao.llm.limit_scope': t.scope, 'ao.llm.wait_ms': t.waitMs });
        await actor.emit([{ from: endpoint, to: path, type: 'llm.throttled', payload: { key: step.key, ...t }, key: `${step.key}/throttled` }], false);
      };
      return parseLlmResponse(
        await port.complete(req, step.signal, { call: { runId: s.runId, key: step.key, actor: path, tenant: s.tenant }, onThrottled }),
        port.provider,
      );
    },
    ok: (res, key) => ({
      key,
      model: res.model,
      content: res.message.content,
      toolCalls: res.message.toolCalls,
      usage: res.usage,
      finishReason: res.finishReason,
    }),
    unsafe: () => false,
    span: llmSpan(actor, asked, model),
  };
}

/** A `chat` span (GenAI semantic conventions). */
function llmSpan(actor: StepActor, asked: LlmRequest, model: string): StepSpec<LlmRequest, LlmResponse, RecordedLlm>['span'] {
  const { s } = actor;
  return {
    name: `chat ${model}`,
    kind: SpanKind.CLIENT,
    attributes: {
      ...s.spanAttributes,
      'gen_ai.operation.name': 'chat',
      'gen_ai.system': s.llm(asked.profile).provider,
      'gen_ai.request.model': model,
      'gen_ai.request.max_tokens': asked.maxTokens,
      ...(asked.temperature !== undefined ? { 'gen_ai.request.temperature': asked.temperature } : {}),
      ...(captureContent() ? { 'gen_ai.input.messages': JSON.stringify(asked.messages) } : {}),
    },
    ended(span, p) {
      span.setAttributes({
        'gen_ai.response.model': p.model,
        'gen_ai.usage.input_tokens': p.usage.inputTokens,
        'gen_ai.usage.output_tokens': p.usage.outputTokens,
        'gen_ai.response.finish_reasons': [p.finishReason],
        ...(captureContent() ? { 'gen_ai.output.messages': JSON.stringify([{ role: 'assistant', content: p.content, toolCalls: p.toolCalls }]) } : {}),
      });
      const m = meters();
      m.tokens.add(p.usage.inputTokens, actor.attrs({ 'gen_ai.request.model': model, 'gen_ai.token.type': 'input' }));
      m.tokens.add(p.usage.outputTokens, actor.attrs({ 'gen_ai.request.model': model, 'gen_ai.token.type': 'output' }));
      return undefined;
    },
    failed: (_span, e) => errorInfo(e, 'AO_LLM_FAILED'),
  };
}

/** The answer as the caller sees it. */
export function responseOf(p: RecordedLlm): LlmResponse {
  return { model: p.model, message: { content: p.content, toolCalls: p.toolCalls }, usage: p.usage, finishReason: p.finishReason };
}

/** What a finished LLM call spent, priced at the model that answered. */
function settlement(p: RecordedLlm, prices: RunServices['prices']) {
  const tokens = p.usage.inputTokens + p.usage.outputTokens;
  return { key: p.key, tokens, usd: priceOf(prices, p.model, p.usage.inputTokens, p.usage.outputTokens), model: p.model };
}
