import { describe, expect, it } from 'vitest';
import { contentHash, promptTokenEstimate } from '@ao/runtime';
import type { ChatMessage, LlmRequest } from '@ao/runtime';
import { llmRequestContent, llmRequestHash } from './request-hash.js';

const whole = (r: LlmRequest) => contentHash(llmRequestContent(r));
const wholeTokens = (r: LlmRequest) => Math.max(1, Math.ceil((JSON.stringify(r.messages) + JSON.stringify(r.tools ?? [])).length / 4));

describe('an LLM request hash computed turn by turn (issue 22)', () => {
  it('equals contentHash of the whole request on every turn of a growing conversation, and so does the token estimate', () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'You read pages.' },
      { role: 'user', content: 'Read them {all} "now"\n\u00e9\u{1f600}' },
    ];
    const tools = [{ name: 'read_page', description: 'Read one.', parameters: { type: 'object', properties: { page: { type: 'number' } } } }];
    for (let turn = 1; turn <= 30; turn++) {
      const req: LlmRequest = {
        profile: 'default',
        messages,
        maxTokens: 256,
        ...(turn % 3 ? { tools } : {}),
        ...(turn % 5 === 0 ? { temperature: 0.5, model: 'm' } : {}),
      };
      expect(llmRequestHash(req)).toBe(whole(req));
      expect(promptTokenEstimate(req)).toBe(wholeTokens(req));
      messages.push({
        role: 'assistant',
        content: `turn ${turn}`,
        toolCalls: [{ id: `c${turn}`, name: 'read_page', arguments: { z: 1, a: [turn, { y: 2, b: 1 }] } }],
      });
      messages.push({ role: 'tool', toolCallId: `c${turn}`, name: 'read_page', content: `{"page":${turn}}` });
    }
  });

  it('starts again when earlier messages were replaced, removed, or maxTokens changed', () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'a' },
      { role: 'user', content: 'b' },
      { role: 'assistant', content: 'c' },
    ];
    const req = (maxTokens = 100): LlmRequest => ({ profile: 'p', messages, maxTokens });
    expect(llmRequestHash(req())).toBe(whole(req()));
    messages[1] = { role: 'user', content: 'B' };
    expect(llmRequestHash(req())).toBe(whole(req()));
    expect(promptTokenEstimate(req())).toBe(wholeTokens(req()));
    messages.pop();
    expect(llmRequestHash(req())).toBe(whole(req()));
    expect(promptTokenEstimate(req())).toBe(wholeTokens(req()));
    expect(llmRequestHash(req(50))).toBe(whole(req(50)));
    expect(llmRequestHash(req(100))).toBe(whole(req(100)));
    // Another array with the same messages: the same hash.
    expect(llmRequestHash({ profile: 'p', messages: [...messages], maxTokens: 100 })).toBe(whole(req()));
  });
});
