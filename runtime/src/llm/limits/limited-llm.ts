import { randomUUID } from 'node:crypto';
import { isAoError } from '@ao/graphs';
import type { Clock } from '../../clock/mod.js';
import { systemClock } from '../../clock/mod.js';
import { promptTokenEstimate } from '../port.js';
import type { LlmPort, LlmRequest, LlmResponse } from '../port.js';
import type { ProfileLimiter, ThrottleInfo } from './limiter.js';

/** Provider 429s a call retries through the limiter (each retry takes a turn of its own). */
const MAX_PROVIDER_RETRIES = 3;

/** A 429 the adapter threw at once (`rateLimited: 'throw'`): how long the provider asked to wait. */
function providerRetryAfter(e: unknown): number | undefined {
  if (!isAoError(e) || e.code !== 'AO_LLM_RATE_LIMITED' || e.details?.status !== 429) return undefined;
  const ms = e.details.retryAfterMs;
  return typeof ms === 'number' ? ms : 0;
}

/**
 * A port whose calls first wait for capacity under its profile's shared limits, and settle what
 * they reserved with what they used. Only live calls come here: a recorded replay or a call read
 * back from the log never reaches a port, so no limiter is consulted for them. A 429 that comes
 * anyway is retried here, after its Retry-After and through the limiter again: a retry sent past
 * it would take the turn of another call, which would meet a 429 in its turn, and so on.
 *
 * @example
 * ```ts
 * const llm = withLimits(new OpenAiLlm({ baseUrl, model }), new ProfileLimiter(table, 'default', limits, systemClock));
 * ```
 */
export function withLimits(port: LlmPort, limiter: ProfileLimiter, clock: Clock = systemClock): LlmPort {
  const count = (req: LlmRequest) => (port.countPromptTokens ? port.countPromptTokens(req) : promptTokenEstimate(req));
  return {
    provider: port.provider,
    ...(port.maxOutputTokens !== undefined ? { maxOutputTokens: port.maxOutputTokens } : {}),
    ...(port.countPromptTokens ? { countPromptTokens: (req: LlmRequest) => port.countPromptTokens!(req) } : {}),
    async complete(req, signal, options) {
      const tenant = options?.call?.tenant ?? 'default';
      const ask = { requests: 1, inputTokens: await count(req), outputTokens: limiter.expectedOutput(req.maxTokens) };
      // One `llm.throttled` a call, whether it waited for the limiter or for a provider's 429.
      let told = false;
      const onThrottled = async (t: ThrottleInfo) => {
        if (told) return;
        told = true;
        await options?.onThrottled?.(t);
      };
      for (let retry = 0; ; retry++) {
        const permit = await limiter.acquire({ tenant, id: randomUUID(), ask, signal, onThrottled });
        let res: LlmResponse;
        try {
          res = await port.complete(req, signal, { ...options, rateLimited: 'throw' });
        } catch (e) {
          // The provider may have counted a failed call: its tokens stay taken; its slot is freed.
          await permit.settle(undefined).catch(() => undefined);
          const wait = providerRetryAfter(e);
          if (wait === undefined || retry >= MAX_PROVIDER_RETRIES || wait > limiter.limits.maxWaitMs) throw e;
          await onThrottled({ profile: limiter.profile, tenant, limit: 'requests', scope: 'provider', waitMs: Math.ceil(wait) });
          await clock.sleep(wait, signal);
          continue;
        }
        await permit.settle(res.usage).catch(() => undefined);
        return res;
      }
    },
  };
}
