import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../clock/mod.js';
import { OpenAiLlm } from '../openai/mod.js';
import { FakeProvider } from '../testing/mod.js';
import { LlmLimitsSchema } from './config.js';
import { ProfileLimiter } from './limiter.js';
import type { ThrottleInfo } from './limiter.js';
import { withLimits } from './limited-llm.js';
import { MemoryBucketTable } from './table.js';

const req = { profile: 'p', maxTokens: 16, messages: [{ role: 'user' as const, content: 'hi' }] };

describe('withLimits', () => {
  let fake: FakeProvider | undefined;
  afterEach(() => fake?.close());

  it('retries a provider 429 itself, after its Retry-After and through the limiter: the retry takes a turn of its own', async () => {
    fake = await FakeProvider.start((r) => (r.n === 1 ? { status: 429, retryAfterMs: '5' } : { text: 'ok', usage: { input: 3, output: 2 } }));
    // Two turns now (a burst of 2), the next in 10 s: past a bound of 100 ms.
    const limiter = new ProfileLimiter(
      new MemoryBucketTable(systemClock),
      'p',
      LlmLimitsSchema.parse({ requestsPerMinute: 6, burstSeconds: 20, maxWaitMs: 100 }),
      systemClock,
    );
    // The adapter's own retries are off: the retry seen here is the limiter's.
    const llm = withLimits(new OpenAiLlm({ baseUrl: `${fake.url}/v1`, model: 'm', stream: false, policy: { maxRetries: 0 } }), limiter);
    const told: ThrottleInfo[] = [];
    const res = await llm.complete(req, undefined, { onThrottled: (t) => void told.push(t) });
    expect(res.message.content).toBe('ok');
    expect(fake.requests).toHaveLength(2);
    expect(told).toEqual([{ profile: 'p', tenant: 'default', limit: 'requests', scope: 'provider', waitMs: 5 }]);
    // Both requests took a turn: none is left.
    await expect(llm.complete(req)).rejects.toMatchObject({ code: 'AO_LLM_RATE_LIMITED', details: { limit: 'requests', scope: 'profile' } });
    expect(fake.requests).toHaveLength(2);
  });

  it("keeps the port's output cap and prompt count", () => {
    const limiter = new ProfileLimiter(new MemoryBucketTable(systemClock), 'p', LlmLimitsSchema.parse({ requestsPerMinute: 6 }), systemClock);
    const port = { provider: 'x', maxOutputTokens: 64, countPromptTokens: () => 7, complete: () => Promise.reject(new Error('no')) };
    const llm = withLimits(port, limiter);
    expect(llm.maxOutputTokens).toBe(64);
    expect(llm.countPromptTokens!(req)).toBe(7);
  });
});
