import { AoError } from '@ao/graphs';
import type { ToolDefinition } from '../registry.js';
import type { McpServersConfig } from './config.js';
import type { McpConnection, McpConnectionOptions } from './connection.js';
import { mcpTools } from './tools.js';

/** The MCP servers of a node, connected, and their tools. */
export interface McpServers {
  readonly connections: readonly McpConnection[];
  readonly tools: readonly ToolDefinition[];
  /** Server name to transport, tool count and restarts (for /health). */
  describe(): Record<string, { transport: 'stdio' | 'http'; tools: number; restarts: number }>;
  close(): Promise<void>;
}

/**
 * Connect every configured server (in parallel) and list its tools. A server that cannot be
 * started fails the start-up with its reason: a graph naming its tools could not run anyway.
 * @throws AoError `AO_MCP_SERVER_FAILED`
 */
export async function connectMcpServers(config: McpServersConfig | undefined, o: McpConnectionOptions = {}): Promise<McpServers> {
  const entries = Object.entries(config ?? {});
  if (!entries.length) return { connections: [], tools: [], describe: () => ({}), close: async () => {} };
  // The MCP SDK (about 0.2 s of CPU to load) only for a node that has servers.
  const { McpConnection } = await import('./connection.js');
  const connections = entries.map(([name, c]) => new McpConnection(name, c, o));
  const started = await Promise.allSettled(connections.map((c) => c.start()));
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(connections.map((c) => c.close()));
    throw failed.reason instanceof Error ? failed.reason : new AoError('AO_MCP_SERVER_FAILED', String(failed.reason));
  }
  const tools = connections.flatMap((conn, i) => mcpTools(conn, entries[i]![1]));
  return {
    connections,
    tools,
    describe: () =>
      Object.fromEntries(
        connections.map((c, i) => [
          c.name,
          { transport: 'command' in entries[i]![1] ? ('stdio' as const) : ('http' as const), tools: c.tools().length, restarts: c.restarts },
        ]),
      ),
    close: async () => {
      await Promise.all(connections.map((c) => c.close()));
    },
  };
}
