import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAoError } from '@ao/graphs';
import { ToolRegistry } from '../registry.js';
import type { ToolContext } from '../registry.js';
import { McpServersSchema } from './config.js';
import { connectMcpServers } from './servers.js';
import type { McpServers } from './servers.js';

// The reference "everything" server from npm, spawned over stdio.
const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');

const ctx = (signal = new AbortController().signal): ToolContext => ({ runId: 'r1', nodeId: 'n1', idempotencyKey: 'r1/supervisor/n1/1', signal });

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return isAoError(e) ? e.code : `${(e as Error).name}: ${(e as Error).message}`;
  }
  return 'no error';
}

describe('MCP tools from a real server (server-everything over stdio)', () => {
  let servers: McpServers;
  let registry: ToolRegistry;
  const logs: string[] = [];
  let connectMs = 0;

  beforeAll(async () => {
    const config = McpServersSchema.parse({ everything: { command: process.execPath, args: [EVERYTHING, 'stdio'], timeoutMs: 800 } });
    const t0 = performance.now();
    servers = await connectMcpServers(config, { log: (l) => logs.push(l), restartDelayMs: 50 });
    connectMs = performance.now() - t0;
    registry = new ToolRegistry();
    for (const t of servers.tools) registry.register(t);
  });
  afterAll(async () => {
    await servers?.close();
  });

  it('lists the tools under the server prefix, with their own JSON schemas and effect classes from their annotations', () => {
    console.log(`[mcp] connect + list tools: ${connectMs.toFixed(0)} ms, ${servers.tools.length} tools`);
    expect(registry.names()).toEqual(expect.arrayContaining(['everything__echo', 'everything__get-sum', 'everything__trigger-long-running-operation']));
    const [echo] = registry.specs(['everything__echo']);
    expect(echo!.parameters).toMatchObject({ type: 'object', properties: { message: { type: 'string' } }, required: ['message'] });
    expect(echo!.parameters).not.toHaveProperty('$schema');
    expect(registry.get('everything__echo')!.effect).toBe('read'); // readOnlyHint
    expect(registry.get('everything__toggle-simulated-logging')!.effect).toBe('unsafe'); // no hint says otherwise
    expect(servers.describe()).toEqual({ everything: { transport: 'stdio', tools: expect.any(Number), restarts: 0 } });
  });

  it('calls a tool and returns its content', async () => {
    expect(await registry.call('everything__echo', { message: 'hello' }, ctx())).toEqual({ content: [{ type: 'text', text: 'Echo: hello' }] });
    expect(await registry.call('everything__get-sum', { a: 2, b: 40 }, ctx())).toMatchObject({
      content: [{ type: 'text', text: expect.stringContaining('42') }],
    });
  });

  it('refuses arguments that do not fit the schema before they reach the server', async () => {
    expect(await codeOf(registry.call('everything__get-sum', { a: 'two' }, ctx()))).toBe('AO_TOOL_ARGS_INVALID');
  });

  it('times a call out (AO_TOOL_TIMEOUT) and aborts one when its signal aborts', async () => {
    expect(await codeOf(registry.call('everything__trigger-long-running-operation', { duration: 10, steps: 5 }, ctx()))).toBe('AO_TOOL_TIMEOUT');
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('run cancelled')), 100);
    const t0 = Date.now();
    const call = servers.connections[0]!.call('trigger-long-running-operation', { duration: 10, steps: 5 }, { signal: ac.signal, timeoutMs: 5_000 });
    expect(await codeOf(call)).toBe('Error: run cancelled'); // the signal's reason, as fetch does
    expect(Date.now() - t0).toBeLessThan(1_000);
    // The server is still fine.
    expect(await registry.call('everything__echo', { message: 'still here' }, ctx())).toEqual({ content: [{ type: 'text', text: 'Echo: still here' }] });
  });

  it('a server that dies fails its in-flight call cleanly, is restarted, and serves the next call', async () => {
    const conn = servers.connections[0]!;
    const pid = conn.pid!;
    // Called on the connection with generous timeouts: on a loaded CI machine a restart takes seconds,
    // and this test is about the kill and the restart, not the 800 ms call timeout of the others.
    const inFlight = codeOf(
      conn.call('trigger-long-running-operation', { duration: 10, steps: 5 }, { signal: new AbortController().signal, timeoutMs: 30_000 }),
    );
    await new Promise((r) => setTimeout(r, 100));
    const t0 = Date.now();
    process.kill(pid, 'SIGKILL');
    expect(await inFlight).toBe('AO_MCP_SERVER_FAILED');
    const failMs = Date.now() - t0;
    // Called while the restart is under way: waits for it.
    const t1 = Date.now();
    expect(await conn.call('echo', { message: 'after restart' }, { signal: new AbortController().signal, timeoutMs: 30_000 })).toEqual({
      content: [{ type: 'text', text: 'Echo: after restart' }],
    });
    console.log(`[mcp] in-flight call failed ${failMs} ms after the kill; next call answered ${Date.now() - t1} ms later (restart included)`);
    expect(conn.restarts).toBe(1);
    expect(conn.pid).not.toBe(pid);
    expect(logs.join('\n')).toMatch(/\[mcp everything\] the server stopped.*restarting/);
  });
});
