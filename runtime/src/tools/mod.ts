export { ToolRegistry, defineTool, type EffectClass, type ToolContext, type ToolDefinition } from './registry.js';
export { builtinTools, noop, stripeRefund, webSearch } from './builtin/mod.js';
export { httpRequestTool, nonPublicClass, parseAllowList, type HttpToolOptions } from './http/mod.js';
export {
  type McpConnection,
  mcpTools,
  mcpToolName,
  connectMcpServers,
  McpServersSchema,
  McpServerSchema,
  type McpServers,
  type McpServerConfig,
  type McpServersConfig,
  type McpTool,
} from './mcp/mod.js';
