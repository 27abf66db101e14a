import { describe, it, expect } from 'vitest';
import { graph } from './builder.js';
import type { GraphBuilder } from './builder.js';
import type { NodeOptionsInput } from './types.js';
import { graphError } from './test-support.js';

/** A graph of pipeline nodes (with per-node option overrides) and edges given as "from->to". */
function g(ids: string[], edges: string[], opts: Record<string, Partial<NodeOptionsInput>> = {}): GraphBuilder {
  let b = graph('g');
  for (const id of ids) b = b.node(id, { agent: 'pipeline', ...opts[id] });
  for (const e of edges) {
    const [from, to] = e.split('->') as [string, string];
    b = b.edge(from, to);
  }
  return b;
}

describe('build-time validation', () => {
  it('rejects a graph without nodes with AO_GRAPH_EMPTY', () => {
    const e = graphError(() => graph('g').budget({ tokens: 10 }).build());
    expect(e.code).toBe('AO_GRAPH_EMPTY');
    expect(e.field).toBe('nodes');
  });

  it('rejects an edge to an undeclared node with AO_GRAPH_UNKNOWN_NODE naming the edge end "to"', () => {
    const e = graphError(() => g(['a', 'b'], ['a->b', 'b->ghost']).build());
    expect(e.code).toBe('AO_GRAPH_UNKNOWN_NODE');
    expect(e.field).toBe('edges[1].to');
    expect(e.details).toEqual({ node: 'ghost' });
  });

  it('rejects an edge from an undeclared node with AO_GRAPH_UNKNOWN_NODE naming the edge end "from"', () => {
    const e = graphError(() => g(['a'], ['ghost->a']).build());
    expect(e.code).toBe('AO_GRAPH_UNKNOWN_NODE');
    expect(e.field).toBe('edges[0].from');
    expect(e.details).toEqual({ node: 'ghost' });
  });

  it('rejects a graph whose nodes all sit in a cycle with AO_GRAPH_NO_ENTRY', () => {
    const e = graphError(() => g(['a', 'b'], ['a->b', 'b->a'], { a: { maxIterations: 2 } }).build());
    expect(e.code).toBe('AO_GRAPH_NO_ENTRY');
    expect(e.field).toBe('edges');
  });

  it('rejects a single node that loops on itself with AO_GRAPH_NO_ENTRY', () => {
    const e = graphError(() => g(['a'], ['a->a'], { a: { maxIterations: 2 } }).build());
    expect(e.code).toBe('AO_GRAPH_NO_ENTRY');
  });

  it('rejects a node no entry reaches with AO_GRAPH_UNREACHABLE_NODE naming the node', () => {
    // a is the only entry; b and c feed each other, so neither is an entry nor reachable.
    const e = graphError(() => g(['a', 'b', 'c'], ['b->c', 'c->b'], { b: { maxIterations: 2 } }).build());
    expect(e.code).toBe('AO_GRAPH_UNREACHABLE_NODE');
    expect(e.field).toBe('nodes.b');
    expect(e.details).toEqual({ node: 'b', entries: ['a'] });
  });

  it('rejects a cycle without maxIterations with AO_GRAPH_UNBOUNDED_CYCLE naming the back edge', () => {
    const e = graphError(() => g(['a', 'b', 'c'], ['a->b', 'b->c', 'c->b']).build());
    expect(e.code).toBe('AO_GRAPH_UNBOUNDED_CYCLE');
    expect(e.field).toBe('edges[2]');
    expect(e.details).toEqual({ from: 'c', to: 'b', body: ['b', 'c'] });
  });

  it('builds the same cycle once one of its nodes has maxIterations', () => {
    for (const bounded of ['b', 'c']) {
      const def = g(['a', 'b', 'c'], ['a->b', 'b->c', 'c->b'], { [bounded]: { maxIterations: 3 } }).build();
      expect(def.loops).toEqual([{ from: 'c', to: 'b', body: ['b', 'c'] }]);
    }
  });

  it('does not count maxIterations on a node outside the cycle', () => {
    const e = graphError(() => g(['a', 'b', 'c'], ['a->b', 'b->c', 'c->b'], { a: { maxIterations: 3 } }).build());
    expect(e.code).toBe('AO_GRAPH_UNBOUNDED_CYCLE');
  });

  it('rejects an unbounded self-loop and accepts a bounded one', () => {
    const e = graphError(() => g(['a', 'b'], ['a->b', 'b->b']).build());
    expect(e.code).toBe('AO_GRAPH_UNBOUNDED_CYCLE');
    expect(e.field).toBe('edges[1]');
    const def = g(['a', 'b'], ['a->b', 'b->b'], { b: { maxIterations: 2 } }).build();
    expect(def.loops).toEqual([{ from: 'b', to: 'b', body: ['b'] }]);
    expect(def.edges.map((x) => x.back)).toEqual([false, true]);
  });
});

describe('graph analysis', () => {
  it('takes as entries the nodes without a predecessor, in declaration order', () => {
    const def = g(['x', 'a', 'y', 'z'], ['x->z', 'y->z', 'a->z']).build();
    expect(def.entries).toEqual(['x', 'a', 'y']);
  });

  it('finds no back edge in a diamond or in edges crossing between entries', () => {
    const diamond = g(['a', 'b', 'c', 'd'], ['a->b', 'a->c', 'b->d', 'c->d']).build();
    expect(diamond.edges.every((e) => !e.back)).toBe(true);
    expect(diamond.loops).toEqual([]);
    const cross = g(['x', 'y', 'z'], ['x->z', 'y->z']).build();
    expect(cross.edges.every((e) => !e.back)).toBe(true);
  });

  it('marks only the edge closing the cycle as a back edge', () => {
    const def = g(['a', 'b', 'c', 'd'], ['a->b', 'b->c', 'c->b', 'c->d'], { b: { maxIterations: 2 } }).build();
    expect(def.edges.map((e) => `${e.from}->${e.to}:${e.back}`)).toEqual(['a->b:false', 'b->c:false', 'c->b:true', 'c->d:false']);
  });

  it('puts in a loop body only the nodes between the loop head and the back edge source', () => {
    // b -> c -> e -> b is the loop; d hangs off c and does not lead back, so it is not in the body.
    const def = g(['a', 'b', 'c', 'd', 'e', 'f'], ['a->b', 'b->c', 'c->d', 'c->e', 'e->b', 'e->f'], { c: { maxIterations: 2 } }).build();
    expect(def.loops).toEqual([{ from: 'e', to: 'b', body: ['b', 'c', 'e'] }]);
  });

  it('finds one loop per back edge for nested loops, each bounded on its own body', () => {
    const def = g(['a', 'b', 'c', 'd', 'e'], ['a->b', 'b->c', 'c->d', 'd->c', 'd->e', 'e->b'], { c: { maxIterations: 2 } }).build();
    expect(def.loops).toEqual([
      { from: 'd', to: 'c', body: ['c', 'd'] },
      { from: 'e', to: 'b', body: ['b', 'c', 'd', 'e'] },
    ]);
  });

  it('reports the first back edge when nested loops have no maxIterations', () => {
    const e = graphError(() => g(['a', 'b', 'c', 'd', 'e'], ['a->b', 'b->c', 'c->d', 'd->c', 'd->e', 'e->b']).build());
    expect(e.code).toBe('AO_GRAPH_UNBOUNDED_CYCLE');
    expect(e.field).toBe('edges[3]');
  });
});
