import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { testGateway } from './harness.js';
import type { TestGateway } from './harness.js';

/** A graph whose input has a default and an enum: the schema offered is the one a client writes. */
const withDefaults = graph('with-defaults', {
  input: z.object({ topic: z.string(), depth: z.number().int().min(1).default(2), tone: z.enum(['plain', 'formal']).optional() }),
}).node('a', { agent: 'pipeline' });
/** A date has no JSON Schema: that part accepts anything, the rest is still described. */
const withDate = graph('with-date', { input: z.object({ when: z.date(), note: z.string() }) }).node('a', { agent: 'pipeline' });

interface Detail {
  name: string;
  version: string;
  entries: string[];
  nodes: { id: string }[];
  edges: { from: string; to: string; conditional: boolean; back: boolean }[];
  budget: Record<string, unknown>;
  hasInputSchema: boolean;
  inputSchema: { type?: string; required?: string[]; properties?: Record<string, Record<string, unknown>>; additionalProperties?: unknown } | null;
}

describe('GET /graphs/:name: a graph, its structure and the JSON Schema of its input', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await testGateway('pglite', { graphs: [withDefaults, withDate] as GraphBuilder<unknown>[] });
  });
  afterAll(async () => gw.close());
  const detail = async (name: string) => {
    const res = await gw.app.inject({ url: `/graphs/${name}` });
    expect(res.statusCode).toBe(200);
    return res.json() as Detail;
  };

  it('gives draft-critique input schema, so a client learns it needs `brief` before starting a run', async () => {
    const g = await detail('draft-critique');
    expect(g.hasInputSchema).toBe(true);
    expect(g.inputSchema).toMatchObject({ type: 'object', required: ['brief'], properties: { brief: { type: 'string', minLength: 1 } } });
    // What the schema says is what POST /runs enforces.
    const missing = await gw.app.inject({ method: 'POST', url: '/runs', payload: { graph: 'draft-critique', input: {} } });
    expect(missing.json().error).toMatchObject({ code: 'AO_VALIDATION', field: 'input.brief' });
  });

  it('gives nodes, edges with the conditional and loop ones marked, budgets and version', async () => {
    const g = await detail('draft-critique');
    const list = (await gw.app.inject({ url: '/graphs' })).json().graphs as Detail[];
    const listed = list.find((x) => x.name === 'draft-critique')!;
    expect(g.version).toBe(listed.version);
    expect(g.version).toMatch(/^[0-9a-f]{16}$/);
    expect(g.entries).toEqual(['outline']);
    expect(g.nodes.map((n) => n.id)).toEqual(['outline', 'draft', 'critique', 'publish']);
    expect(g.edges).toEqual([
      { from: 'outline', to: 'draft', conditional: false, back: false },
      { from: 'draft', to: 'critique', conditional: false, back: false },
      { from: 'critique', to: 'draft', conditional: true, back: true },
      { from: 'critique', to: 'publish', conditional: true, back: false },
    ]);
    expect(g.budget).toEqual({ tokens: 20000, wallClockSec: 120 });
  });

  it('says a graph without an input schema takes any input: inputSchema null', async () => {
    const g = await detail('triage');
    expect(g.hasInputSchema).toBe(false);
    expect(g.inputSchema).toBeNull();
  });

  it('describes the input a client sends: a field with a default is optional, enums are listed', async () => {
    const g = await detail('with-defaults');
    expect(g.inputSchema!.required).toEqual(['topic']);
    expect(g.inputSchema!.properties).toMatchObject({ depth: { type: 'integer', minimum: 1, default: 2 }, tone: { enum: ['plain', 'formal'] } });
  });

  it('still answers for an input JSON Schema cannot fully express (the unrepresentable part accepts anything)', async () => {
    const g = await detail('with-date');
    expect(g.inputSchema!.required).toEqual(['when', 'note']);
    expect(g.inputSchema!.properties).toMatchObject({ when: {}, note: { type: 'string' } });
  });

  it('keeps GET /graphs as a list of summaries without the schemas', async () => {
    const all = (await gw.app.inject({ url: '/graphs' })).json() as { graphs: Detail[] };
    expect(Object.keys(all)).toEqual(['graphs']);
    for (const g of all.graphs) expect(g).not.toHaveProperty('inputSchema');
    expect(all.graphs.find((g) => g.name === 'draft-critique')!.hasInputSchema).toBe(true);
  });

  it('answers an unknown graph with 404 AO_GRAPH_NOT_FOUND naming the field', async () => {
    const res = await gw.app.inject({ url: '/graphs/no-such-graph' });
    expect(res.statusCode).toBe(404);
    expect(res.json()).toEqual({ error: { code: 'AO_GRAPH_NOT_FOUND', message: 'no graph named "no-such-graph"', field: 'name' } });
  });
});
