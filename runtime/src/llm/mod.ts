export {
  ToolCallSchema,
  ChatMessageSchema,
  ToolSpecSchema,
  LlmRequestSchema,
  LlmResponseSchema,
  FinishReasonSchema,
  parseLlmResponse,
  estimateTokens,
  type ToolCall,
  type ChatMessage,
  type ToolSpec,
  type LlmRequest,
  type LlmResponse,
  type FinishReason,
  type LlmPort,
} from './port.js';
export { OfflineLlm, type OfflineLlmOptions } from './offline/mod.js';
