import { describe, expect, it } from 'vitest';
import { budgetText, secretNote } from './format';

describe('secretNote: the inspector says what the secrets in an event stand for', () => {
  it('counts distinct handles, redacted arguments and values not kept; says nothing for an event without secrets', () => {
    const h = `secret:${'a'.repeat(32)}`;
    expect(secretNote(JSON.stringify({ args: { token: h, pin: '[redacted]' }, again: h }))).toBe(
      '1 secret value shown as a handle (secret:…), kept encrypted on the server; 1 secret argument redacted',
    );
    expect(secretNote('"[secret not kept: AO_SECRET_KEY_MISSING]"')).toBe('1 secret value not kept (the server has no AO_SECRET_KEY)');
    expect(secretNote(JSON.stringify({ text: 'a secret: nothing here' }))).toBe('');
  });
});

describe('budgetText: a graph budget for people', () => {
  it('lists each limit with its unit, per-tool caps last; a graph without limits says so', () => {
    expect(budgetText({ tokens: 8000, tools: 10, wallClockSec: 60, perTool: { stripe_refund: 1 } })).toBe(
      '8,000 tokens · 10 tool calls · 60 s wall clock · stripe_refund ×1',
    );
    expect(budgetText({})).toBe('no limits');
  });
});
