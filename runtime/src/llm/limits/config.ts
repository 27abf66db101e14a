import { z } from 'zod';
import type { BucketLimits, Rate } from './bucket.js';

/**
 * A profile's provider limits, shared by every node of a cluster (see DESIGN.md, "Provider
 * limits"). Each rate is per minute; a call waits for capacity (at most `maxWaitMs`) instead of
 * being sent to a 429.
 *
 * @example
 * ```json
 * { "requestsPerMinute": 500, "inputTokensPerMinute": 200000, "outputTokensPerMinute": 50000,
 *   "concurrentCalls": 32, "tenantShare": 0.5 }
 * ```
 */
export const LlmLimitsSchema = z
  .strictObject({
    requestsPerMinute: z.number().int().positive().optional(),
    inputTokensPerMinute: z.number().int().positive().optional(),
    outputTokensPerMinute: z.number().int().positive().optional(),
    /** Calls in flight at once, cluster-wide. */
    concurrentCalls: z.number().int().positive().optional(),
    /** The part of every limit one tenant may use (1: no per-tenant cap). */
    tenantShare: z.number().gt(0).max(1).default(1),
    /** How many seconds' worth of a rate may be used at once (each bucket's capacity). */
    burstSeconds: z.number().positive().max(60).default(1),
    /** The longest a call waits for capacity before it fails with AO_LLM_RATE_LIMITED (retryable). */
    maxWaitMs: z.number().int().min(0).max(600_000).default(60_000),
    /**
     * Output tokens reserved per call before its usage is known (settled after): the request's
     * `maxTokens` when absent or larger.
     */
    expectedOutputTokens: z.number().int().positive().optional(),
    /** How long a concurrency slot outlives a node that died holding it. */
    holdMs: z.number().int().positive().max(3_600_000).default(600_000),
  })
  .refine((l) => l.requestsPerMinute ?? l.inputTokensPerMinute ?? l.outputTokensPerMinute ?? l.concurrentCalls, {
    message: 'name at least one of requestsPerMinute, inputTokensPerMinute, outputTokensPerMinute, concurrentCalls',
  });
export type LlmLimits = z.infer<typeof LlmLimitsSchema>;

/** The bucket limits of a profile (`share` 1) or of one tenant's share of it. */
export function bucketLimits(l: LlmLimits, share = 1): BucketLimits {
  const rate = (perMinute: number | undefined): Rate | undefined => {
    if (perMinute === undefined) return undefined;
    const perMs = (perMinute * share) / 60_000;
    // At least one request (or token) fits a bucket, however small the share.
    return { perMs, capacity: Math.max(1, perMs * l.burstSeconds * 1000) };
  };
  const out: { -readonly [K in keyof BucketLimits]: BucketLimits[K] } = {};
  const r = rate(l.requestsPerMinute);
  const i = rate(l.inputTokensPerMinute);
  const o = rate(l.outputTokensPerMinute);
  if (r) out.requests = r;
  if (i) out.inputTokens = i;
  if (o) out.outputTokens = o;
  if (l.concurrentCalls !== undefined) out.concurrent = Math.max(1, Math.floor(l.concurrentCalls * share));
  return out;
}
