export { OfflineLlm, type OfflineLlmOptions } from './offline-llm.js';
