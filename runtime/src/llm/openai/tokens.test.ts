import { describe, expect, it } from 'vitest';
import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import { promptTokenEstimate } from '../port.js';
import type { LlmRequest } from '../port.js';
import { OpenAiLlm } from './openai-llm.js';
import { countOpenAiPrompt, encodingOf } from './tokens.js';

const req = (content: string, o: Partial<LlmRequest> = {}): LlmRequest => ({ profile: 'default', messages: [{ role: 'user', content }], maxTokens: 100, ...o });

describe('OpenAI prompt counts (what the budget reserves for the prompt)', () => {
  it('knows the encoding of OpenAI models by name, and none for other models behind the API', () => {
    expect(encodingOf('gpt-4o-mini')).toBe('o200k_base');
    expect(encodingOf('gpt-4.1')).toBe('o200k_base');
    expect(encodingOf('o3-mini')).toBe('o200k_base');
    expect(encodingOf('gpt-4-turbo')).toBe('cl100k_base');
    expect(encodingOf('gpt-3.5-turbo')).toBe('cl100k_base');
    expect(encodingOf('llama-3.1-70b')).toBeUndefined();
  });

  it('counts the chat framing plus each message in the model’s own tokens', async () => {
    expect(await countOpenAiPrompt('gpt-4o', req('hello world'))).toBe(3 + 4 + countTokens('hello world'));
    const twoTurns = req('hello', {
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: 'hello' },
      ],
    });
    expect(await countOpenAiPrompt('gpt-4o', twoTurns)).toBe(3 + 4 + countTokens('Be brief.') + 4 + countTokens('hello'));
  });

  it('counts dense text the character estimate undercounts (CJK)', async () => {
    const text = '预算应该停止超支，而不是停止工作。'.repeat(40);
    expect(await countOpenAiPrompt('gpt-4o', req(text))).toBeGreaterThan(promptTokenEstimate(req(text)));
  });

  it('counts offered tool schemas, and falls back to the estimate for a model it does not know', async () => {
    const tools = [{ name: 'web_search', description: 'Search the web.', parameters: { type: 'object', properties: { query: { type: 'string' } } } }];
    expect(await countOpenAiPrompt('gpt-4o', req('hi', { tools }))).toBeGreaterThan(await countOpenAiPrompt('gpt-4o', req('hi')));
    expect(await countOpenAiPrompt('llama-3.1-70b', req('hi', { tools }))).toBe(promptTokenEstimate(req('hi', { tools })));
  });

  it('is the port’s count (the request’s model, else the profile’s)', async () => {
    const port = new OpenAiLlm({ baseUrl: 'http://127.0.0.1:9', model: 'gpt-4o-mini' });
    expect(await port.countPromptTokens(req('hello world'))).toBe(3 + 4 + countTokens('hello world'));
    expect(await port.countPromptTokens(req('hello world', { model: 'llama-3' }))).toBe(promptTokenEstimate(req('hello world')));
  });
});
