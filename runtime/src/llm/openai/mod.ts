export { OpenAiLlm, type OpenAiLlmOptions } from './openai-llm.js';
