export {
  ToolRegistry,
  defineTool,
  type EffectClass,
  type ToolContext,
  type ToolDefinition,
} from './registry.js';
export { builtinTools, noop, stripeRefund, webSearch } from './builtin/mod.js';
