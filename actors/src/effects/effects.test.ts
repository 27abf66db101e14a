import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { actorPath, defineTool, ToolRegistry } from '@ao/runtime';
import type { RunServices } from '../services.js';
import { Effects } from './effects.js';

describe('Effects: a node calls only the tools it lists', () => {
  it('refuses a tool the node does not list with AO_TOOL_NOT_ALLOWED, whoever asks, without calling it or writing anything', async () => {
    const calls: unknown[] = [];
    const tools = new ToolRegistry()
      .register(defineTool({ name: 'listed', description: '', effect: 'pure', input: z.object({}), handler: async () => 'ok' }))
      .register(defineTool({ name: 'refund', description: '', effect: 'unsafe', input: z.object({}), handler: async (a) => void calls.push(a) }));
    const writes: unknown[] = [];
    // Only what the check may touch: the graph and the registry. Anything else would throw.
    const services = {
      def: { node: (id: string) => (id === 'n' ? { id: 'n', tools: ['listed'] } : undefined) },
      tools,
      journal: new Proxy({}, { get: (_t, p) => () => writes.push(p) }),
    } as unknown as RunServices;
    const effects = new Effects(services, actorPath('supervisor', 'n'), 'cause', 'n');
    const outcome = await effects.tool('n', 'refund', {}, new AbortController().signal);
    expect(outcome).toEqual({ ok: false, error: { code: 'AO_TOOL_NOT_ALLOWED', message: 'node "n" may not call tool "refund"; it may call: listed' } });
    expect(calls).toEqual([]);
    expect(writes).toEqual([]);
    expect(effects.usage.toolCalls).toBe(0);
  });
});
