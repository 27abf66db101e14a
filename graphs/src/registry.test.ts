import { describe, it, expect } from 'vitest';
import { graph } from './builder.js';
import { GraphRegistry } from './registry.js';
import { graphError } from './test-support.js';

const TOOLS = new Set(['web_search', 'stripe_refund']);
const registry = () => new GraphRegistry((name) => TOOLS.has(name));

const search = (instructions = 'search') =>
  graph('search')
    .node('plan', { agent: 'supervisor' })
    .node('look', { agent: 'pipeline', tools: ['web_search'], instructions })
    .edge('plan', 'look');

describe('GraphRegistry', () => {
  it('rejects a node tool the tool registry lacks with AO_GRAPH_UNKNOWN_TOOL naming the tool list entry', () => {
    const r = registry();
    const b = graph('g').node('a', { agent: 'pipeline', tools: ['web_search', 'teleport'] });
    const e = graphError(() => r.register(b));
    expect(e.code).toBe('AO_GRAPH_UNKNOWN_TOOL');
    expect(e.field).toBe('nodes.a.tools[1]');
    expect(e.details).toEqual({ tool: 'teleport' });
    expect(r.get('g')).toBeUndefined();
  });

  it('rejects a different graph under a registered name with AO_GRAPH_ALREADY_REGISTERED and keeps the first', () => {
    const r = registry();
    const first = r.register(search());
    const e = graphError(() => r.register(search('search harder')));
    expect(e.code).toBe('AO_GRAPH_ALREADY_REGISTERED');
    expect(e.field).toBe('name');
    expect(r.get('search')).toBe(first);
  });

  it('accepts the same definition again, as a builder or as a built graph', () => {
    const r = registry();
    const b = search();
    const def = r.register(b);
    expect(r.register(b)).toBe(def);
    expect(r.register(search().build()).version).toBe(def.version);
    expect(r.list()).toHaveLength(1);
  });

  it('builds a registered builder, so a build error surfaces at registration', () => {
    const e = graphError(() => registry().register(graph('empty')));
    expect(e.code).toBe('AO_GRAPH_EMPTY');
  });

  it('looks graphs up by name and lists them sorted by name', () => {
    const r = registry();
    r.register(graph('zeta').node('a', { agent: 'pipeline' }));
    r.register(graph('alpha').node('a', { agent: 'pipeline' }));
    expect(r.get('zeta')?.name).toBe('zeta');
    expect(r.get('missing')).toBeUndefined();
    expect(r.list().map((d) => d.name)).toEqual(['alpha', 'zeta']);
  });
});
