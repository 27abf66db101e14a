import { randomUUID } from 'node:crypto';
import { promptTokenEstimate } from '../port.js';
import type { LlmPort, LlmRequest } from '../port.js';
import type { ProfileLimiter } from './limiter.js';

/**
 * A port whose calls first wait for capacity under its profile's shared limits, and settle what
 * they reserved with what they used. Only live calls come here: a recorded replay or a call read
 * back from the log never reaches a port, so no limiter is consulted for them.
 *
 * @example
 * ```ts
 * const llm = withLimits(new OpenAiLlm({ baseUrl, model }), new ProfileLimiter(table, 'default', limits, systemClock));
 * ```
 */
export function withLimits(port: LlmPort, limiter: ProfileLimiter): LlmPort {
  const count = (req: LlmRequest) => (port.countPromptTokens ? port.countPromptTokens(req) : promptTokenEstimate(req));
  return {
    provider: port.provider,
    ...(port.maxOutputTokens !== undefined ? { maxOutputTokens: port.maxOutputTokens } : {}),
    ...(port.countPromptTokens ? { countPromptTokens: (req: LlmRequest) => port.countPromptTokens!(req) } : {}),
    async complete(req, signal, options) {
      const permit = await limiter.acquire({
        tenant: options?.call?.tenant ?? 'default',
        id: randomUUID(),
        ask: { requests: 1, inputTokens: await count(req), outputTokens: limiter.expectedOutput(req.maxTokens) },
        signal,
        onThrottled: options?.onThrottled,
      });
      let res;
      try {
        res = await port.complete(req, signal, options);
      } catch (e) {
        // The provider may have counted a failed call: its tokens stay taken; its slot is freed.
        await permit.settle(undefined).catch(() => undefined);
        throw e;
      }
      await permit.settle(res.usage).catch(() => undefined);
      return res;
    },
  };
}
