export {
  ToolCallSchema,
  ChatMessageSchema,
  ToolSpecSchema,
  LlmRequestSchema,
  LlmResponseSchema,
  FinishReasonSchema,
  parseLlmResponse,
  estimateTokens,
  promptTokenEstimate,
  type ToolCall,
  type ChatMessage,
  type ToolSpec,
  type LlmRequest,
  type LlmResponse,
  type FinishReason,
  type LlmPort,
  type LlmDelta,
  type LlmCallOptions,
} from './port.js';
export { OfflineLlm, type OfflineLlmOptions } from './offline/mod.js';
export { OpenAiLlm, type OpenAiLlmOptions } from './openai/mod.js';
export { AnthropicLlm, ANTHROPIC_VERSION } from './anthropic/mod.js';
export { DEFAULT_HTTP_POLICY, type HttpPolicy, type HttpLlmOptions } from './http/mod.js';
export {
  LlmProfileSchema,
  LlmProfilesSchema,
  LlmProfiles,
  llmProfilesOf,
  createLlm,
  describeProfile,
  DEFAULT_OPENAI_MODEL,
  DEFAULT_ANTHROPIC_MODEL,
  type LlmProfile,
  type LlmEnv,
} from './profiles.js';
export { DeltaFeed, withDeltas, type DeltaEvent } from './deltas.js';
export {
  LlmLimitsSchema,
  ProfileLimiter,
  MemoryBucketTable,
  withLimits,
  bucketLimits,
  reserve,
  adjust,
  hold,
  unhold,
  levelAt,
  type LlmLimits,
  type BucketTable,
  type BucketUpdate,
  type BucketState,
  type BucketLimits,
  type Rate,
  type Ask,
  type LimitName,
  type ThrottleInfo,
  type Permit,
} from './limits/mod.js';
