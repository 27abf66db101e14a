export { withRetries, retryAfterMs, HttpStatusError, AttemptTimeoutError, ProviderError, DEFAULT_HTTP_POLICY, type HttpPolicy, type Attempt } from './retry.js';
export { readSse, type SseEvent } from './sse.js';
export type { HttpLlmOptions } from './common.js';
