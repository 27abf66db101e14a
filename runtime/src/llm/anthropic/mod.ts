export { AnthropicLlm, ANTHROPIC_VERSION } from './anthropic-llm.js';
