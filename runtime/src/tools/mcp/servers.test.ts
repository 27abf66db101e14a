import { describe, expect, it } from 'vitest';
import { connectMcpServers } from './servers.js';

// A node without MCP servers (the default) gets an empty set, without loading the MCP SDK.
describe('connectMcpServers without servers', () => {
  it.each([undefined, {}])('config %j: no connections, no tools, nothing to describe or close', async (config) => {
    const servers = await connectMcpServers(config);
    expect(servers.connections).toEqual([]);
    expect(servers.tools).toEqual([]);
    expect(servers.describe()).toEqual({});
    await servers.close();
  });
});
