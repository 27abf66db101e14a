// Types only: connectMcpServers imports the connection (and the MCP SDK) when a server is configured.
export type { McpConnection, McpConnectionOptions, McpTool } from './connection.js';
export { mcpTools, mcpToolName, effectOf, resultOf } from './tools.js';
export { McpServerSchema, McpServersSchema, McpStdioServerSchema, McpHttpServerSchema, type McpServerConfig, type McpServersConfig } from './config.js';
export { connectMcpServers, type McpServers } from './servers.js';
