export { McpConnection, type McpConnectionOptions, type McpTool } from './connection.js';
export { mcpTools, mcpToolName, effectOf, resultOf } from './tools.js';
export { McpServerSchema, McpServersSchema, McpStdioServerSchema, McpHttpServerSchema, type McpServerConfig, type McpServersConfig } from './config.js';
export { connectMcpServers, type McpServers } from './servers.js';
