import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graph } from '@ao/graphs';
import { loadConfig } from '@ao/runtime';
import type { Envelope } from '@ao/runtime';
import { inMemoryTelemetry } from '@ao/runtime/testing';
import { startRuntime } from '../src/mod.js';
import type { Runtime } from '../src/mod.js';

// The reference "everything" MCP server from npm, spawned over stdio by the node itself.
const EVERYTHING = createRequire(import.meta.url).resolve('@modelcontextprotocol/server-everything/dist/index.js');

const mcpGraph = graph('mcp-sum')
  // The model (offline here) chooses the arguments from the tool's JSON schema.
  .node('add', { agent: 'pipeline', tools: ['everything__get-sum'], instructions: 'Add two numbers with the tool.' })
  // Arguments that do not fit the server's schema: refused by validation, the node goes on.
  .node('bad', { agent: 'pipeline', tools: ['everything__get-sum'], args: () => ({ 'everything__get-sum': { a: 'two', b: 2 } }) })
  .edge('add', 'bad')
  .budget({ tokens: 20_000, tools: 5, perTool: { 'everything__get-sum': 3 } });

describe('MCP tools in a graph (server-everything over stdio, configured by AO_MCP_SERVERS)', () => {
  let rt: Runtime;
  let dir: string;
  let startMs = 0;
  let tel: ReturnType<typeof inMemoryTelemetry>;
  beforeAll(async () => {
    tel = inMemoryTelemetry();
    dir = await mkdtemp(join(tmpdir(), 'ao-mcp-'));
    const t0 = performance.now();
    rt = await startRuntime(
      loadConfig({
        AO_DATA_DIR: dir,
        AO_NODE_ID: 'mcp-test',
        AO_MCP_SERVERS: JSON.stringify({ everything: { command: process.execPath, args: [EVERYTHING, 'stdio'], timeoutMs: 10_000 } }),
      }),
      { graphs: [mcpGraph] },
    );
    startMs = performance.now() - t0;
  });
  afterAll(async () => {
    await rt?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('calls a server tool through the full path: budget approval, validation, span, journaled call and recorded result; a recorded replay needs no server', async () => {
    console.log(`[mcp] startRuntime with one stdio MCP server: ${startMs.toFixed(0)} ms`);
    expect(rt.providers.mcp.describe()).toMatchObject({ everything: { transport: 'stdio', restarts: 0 } });
    const { id } = await rt.engine.startRun({ graph: 'mcp-sum', input: {} });
    const run = await rt.engine.waitForRun(id, 30_000);
    expect(run.status, JSON.stringify(run.error)).toBe('succeeded');
    const log: Envelope[] = await rt.engine.listEvents(id, { limit: 10_000 });
    const of = (node: string) => log.filter((e) => e.from.startsWith(`supervisor/${node}`) || e.to.startsWith(`supervisor/${node}`));

    // add: approved by the budget actor, called, its result recorded and settled.
    const add = of('add').map((e) => e.type);
    const approved = add.indexOf('budget.request', add.indexOf('llm.response'));
    expect(add.slice(approved, approved + 5)).toEqual(['budget.request', 'budget.granted', 'tool.call', 'tool.result', 'budget.settle']);
    const call = of('add').find((e) => e.type === 'tool.call')!;
    expect(call).toMatchObject({ to: 'tool/everything__get-sum', payload: { name: 'everything__get-sum', args: { a: 1, b: 1 } } });
    const result = of('add').find((e) => e.type === 'tool.result')!;
    expect(result.payload).toMatchObject({ ok: true, result: { content: [{ type: 'text', text: expect.stringMatching(/\b2\b/) }] } });

    // bad: validation refused the call before the server saw it, the node went on.
    const refused = of('bad').find((e) => e.type === 'tool.result')!;
    expect(refused.payload).toMatchObject({ ok: false, error: { code: 'AO_TOOL_ARGS_INVALID' } });
    expect(run.nodes).toMatchObject({ bad: { status: 'succeeded' } });

    // The call is an OpenTelemetry span of the node, in the run's trace.
    const spans = tel.spans.getFinishedSpans().filter((x) => x.name === 'execute_tool everything__get-sum' && x.attributes['ao.run.id'] === id);
    const okSpan = spans.find((x) => x.attributes['ao.tool.outcome'] === 'ok');
    expect(okSpan?.attributes).toMatchObject({ 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': 'everything__get-sum' });
    expect(okSpan!.spanContext().traceId).toBe(run.traceId);

    // Recorded: a replay with the server gone reproduces the run from the log alone.
    await rt.providers.mcp.close();
    const replay = await rt.engine.replay(id, { fromStep: 0, mode: 'recorded' });
    const done = await rt.engine.waitForRun(replay.id, 30_000);
    expect(done.status).toBe('succeeded');
    expect((await rt.engine.diff(id, replay.id)).identical).toBe(true);
  });
});
