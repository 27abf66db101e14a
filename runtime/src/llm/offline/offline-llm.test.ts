import { describe, it, expect } from 'vitest';
import { SimulatedClock } from '../../clock/mod.js';
import { ToolRegistry } from '../../tools/registry.js';
import { builtinTools, stripeRefund, webSearch } from '../../tools/builtin/mod.js';
import { LlmResponseSchema, estimateTokens, type ChatMessage, type LlmRequest } from '../port.js';
import { OfflineLlm } from './offline-llm.js';

const tools = new ToolRegistry();
for (const t of builtinTools) tools.register(t);

/** The first user message exactly as the agent loop writes it. */
function prompt(o: { node: string; kind: string; input: unknown; upstream?: Record<string, string>; iteration?: number; branch?: [number, number] }): string {
  const lines = [`Node: ${o.node} (${o.kind})`, 'Run input:', JSON.stringify(o.input, null, 2), ''];
  if (o.upstream) {
    lines.push('Upstream outputs:');
    for (const [id, text] of Object.entries(o.upstream)) lines.push(`## ${id}`, text);
    lines.push('');
  }
  if (o.iteration && o.iteration > 1) lines.push(`Iteration: ${o.iteration}`);
  if (o.branch) lines.push(`Branch: ${o.branch[0]} of ${o.branch[1]}`);
  return lines.join('\n');
}

function request(messages: ChatMessage[], extra: Partial<LlmRequest> = {}): LlmRequest {
  return { profile: 'default', maxTokens: 1024, messages, ...extra };
}

const searchMessages: ChatMessage[] = [
  { role: 'system', content: 'Search the web for sources that answer the plan.' },
  { role: 'user', content: prompt({ node: 'search', kind: 'pipeline', input: { topic: 'durable execution' }, upstream: { plan: 'Questions: what is it?' } }) },
];

describe('OfflineLlm', () => {
  it('gives deep-equal responses to the same request', async () => {
    const llm = new OfflineLlm();
    const req = request(searchMessages, { tools: tools.specs(['web_search']) });
    const plain = request(searchMessages);
    expect(await llm.complete(req)).toEqual(await llm.complete(req));
    expect(await llm.complete(plain)).toEqual(await new OfflineLlm().complete(plain));
    expect(LlmResponseSchema.safeParse(await llm.complete(req)).success).toBe(true);
  });

  it('calls every offered tool with arguments that pass the tool schemas', async () => {
    const res = await new OfflineLlm().complete(
      request(
        [
          { role: 'system', content: 'Refund the customer charge.' },
          { role: 'user', content: prompt({ node: 'refund', kind: 'pipeline', input: { intent: 'refund', customer: 'Ada' } }) },
        ],
        { tools: tools.specs(['web_search', 'stripe_refund']) },
      ),
    );
    expect(res.finishReason).toBe('tool_calls');
    expect(res.message.content).toBe('');
    expect(res.message.toolCalls.map((c) => c.name)).toEqual(['web_search', 'stripe_refund']);
    for (const call of res.message.toolCalls) {
      expect(call.id).toMatch(/^call_[0-9a-f]{8}$/);
      expect(() => tools.validate(call.name, call.arguments)).not.toThrow();
    }
    const [search, refund] = res.message.toolCalls;
    expect(webSearch.input.parse(search?.arguments).query).toMatch(/refund/);
    expect(stripeRefund.input.parse(refund?.arguments)).toMatchObject({ reason: 'requested_by_customer' });
    expect(refund?.arguments.chargeId).toMatch(/^ch_offline_[0-9a-f]{8}$/);
    expect(res.usage.outputTokens).toBe(estimateTokens(JSON.stringify(res.message.toolCalls)));
  });

  it('builds the query from the topic and takes same-named values from the run input', async () => {
    const res = await new OfflineLlm().complete(
      request(
        [
          { role: 'system', content: 'Search the web for sources.' },
          { role: 'user', content: prompt({ node: 'x', kind: 'pipeline', input: { topic: 'actor models', chargeId: 'ch_42', amountCents: 250 } }) },
        ],
        { tools: tools.specs(['web_search', 'stripe_refund']) },
      ),
    );
    expect(res.message.toolCalls[0]?.arguments.query).toMatch(/^actor models search web sources/);
    expect(res.message.toolCalls[1]?.arguments).toMatchObject({ chargeId: 'ch_42', amountCents: 250 });
  });

  it('answers with final text that digests the tool results once a tool message exists', async () => {
    const llm = new OfflineLlm();
    const first = await llm.complete(request(searchMessages, { tools: tools.specs(['web_search']) }));
    const call = first.message.toolCalls[0]!;
    const result = await tools.call(call.name, call.arguments, { runId: 'r', nodeId: 'search', idempotencyKey: 'k', signal: new AbortController().signal });
    const res = await llm.complete(
      request(
        [
          ...searchMessages,
          { role: 'assistant', content: '', toolCalls: first.message.toolCalls },
          { role: 'tool', toolCallId: call.id, name: call.name, content: JSON.stringify(result) },
        ],
        { tools: tools.specs(['web_search']) },
      ),
    );
    expect(res.finishReason).toBe('stop');
    expect(res.message.toolCalls).toEqual([]);
    expect(res.message.content.startsWith('[offline offline-1] search (pipeline)')).toBe(true);
    expect(res.message.content).toContain('web_search -> 3 results');
    expect(res.message.content).toContain('Builds on: plan');
    expect(res.message.content).toContain('durable execution');
  });

  it('has a reviewer asked for APPROVED revise on iteration 1 and approve from iteration 2', async () => {
    const llm = new OfflineLlm();
    const review = (iteration: number) =>
      llm.complete(
        request([
          { role: 'system', content: 'Review the draft. Reply APPROVED if it is ready to publish, otherwise list what to fix.' },
          { role: 'user', content: prompt({ node: 'critique', kind: 'supervisor', input: { brief: 'x' }, upstream: { draft: 'text' }, iteration }) },
        ]),
      );
    expect((await review(1)).message.content).toMatch(/^REVISE: 1\) /);
    expect((await review(2)).message.content).toMatch(/^APPROVED\b/);
    expect((await review(3)).message.content).toMatch(/^APPROVED\b/);
  });

  it('cuts text at maxTokens and reports finishReason length', async () => {
    const res = await new OfflineLlm().complete(request(searchMessages, { maxTokens: 5 }));
    expect(res.finishReason).toBe('length');
    expect(res.message.content).toHaveLength(20);
    expect(res.usage.outputTokens).toBe(5);
  });

  it('counts input tokens over every message and the tool specs', async () => {
    const specs = tools.specs(['web_search']);
    const res = await new OfflineLlm().complete(request(searchMessages, { tools: specs }));
    const text = searchMessages.map((m) => m.content).join('\n') + JSON.stringify(specs);
    expect(res.usage.inputTokens).toBe(estimateTokens(text));
  });

  it('rejects with an AbortError when aborted during the simulated latency', async () => {
    const clock = new SimulatedClock();
    const llm = new OfflineLlm({ latencyMs: 1000, clock });
    const ac = new AbortController();
    const pending = llm.complete(request(searchMessages), ac.signal);
    await clock.advance(500);
    ac.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    await expect(llm.complete(request(searchMessages), ac.signal)).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('waits the simulated latency, then answers', async () => {
    const clock = new SimulatedClock();
    let done = false;
    const pending = new OfflineLlm({ latencyMs: 100, clock }).complete(request(searchMessages)).then((r) => ((done = true), r));
    await clock.advance(99);
    expect(done).toBe(false);
    await clock.advance(1);
    expect((await pending).finishReason).toBe('stop');
  });

  it('gives swarm branches different text, each naming its branch', async () => {
    const llm = new OfflineLlm({ model: 'offline-test' });
    const branch = (k: number) =>
      llm.complete(
        request([
          { role: 'system', content: 'Analyse the sources from your own angle.' },
          { role: 'user', content: prompt({ node: 'analyse', kind: 'swarm', input: { topic: 't' }, upstream: { search: 'sources' }, branch: [k, 3] }) },
        ]),
      );
    const texts = await Promise.all([1, 2, 3].map(async (k) => (await branch(k)).message.content));
    expect(new Set(texts).size).toBe(3);
    texts.forEach((t, i) => {
      expect(t.startsWith('[offline offline-test] analyse (swarm)')).toBe(true);
      expect(t).toContain(`Branch ${i + 1} of 3`);
    });
  });

  it('reads a free-form user message as the input', async () => {
    const res = await new OfflineLlm().complete(request([{ role: 'user', content: 'hello there' }]));
    expect(res.message.content).toContain('Input: "hello there"');
  });
});
