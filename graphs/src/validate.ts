import { GraphError } from './errors.js';
import type { NodeDef } from './types.js';

interface RawEdge {
  from: string;
  to: string;
}

export interface GraphAnalysis {
  entries: string[];
  /** Indexes (into the edge list) of the edges that close a cycle. */
  backEdges: Set<number>;
  loops: Array<{ from: string; to: string; body: string[] }>;
}

/**
 * Whole-graph checks, run when a graph is built: edge endpoints, entry nodes, reachability and
 * bounded cycles. A depth-first walk from the entries (in declaration order) marks each edge that
 * closes a cycle as a back edge; without them the graph is a DAG, on which joins are decided.
 */
export function analyse<I>(nodes: ReadonlyArray<NodeDef<I>>, edges: ReadonlyArray<RawEdge>): GraphAnalysis {
  if (nodes.length === 0) throw new GraphError('AO_GRAPH_EMPTY', 'graph has no nodes', { field: 'nodes' });
  const ids = new Set(nodes.map((n) => n.id));
  edges.forEach((e, i) => {
    for (const end of ['from', 'to'] as const) {
      if (!ids.has(e[end])) {
        throw new GraphError('AO_GRAPH_UNKNOWN_NODE', `edge ${e.from} -> ${e.to} names unknown node "${e[end]}"`, {
          field: `edges[${i}].${end}`,
          details: { node: e[end] },
        });
      }
    }
  });

  const out = new Map<string, number[]>(nodes.map((n) => [n.id, []]));
  const indegree = new Map<string, number>(nodes.map((n) => [n.id, 0]));
  edges.forEach((e, i) => {
    out.get(e.from)!.push(i);
    indegree.set(e.to, indegree.get(e.to)! + 1);
  });
  const entries = nodes.filter((n) => indegree.get(n.id) === 0).map((n) => n.id);
  if (entries.length === 0) {
    throw new GraphError('AO_GRAPH_NO_ENTRY', 'every node has a predecessor, so no node can start the run', {
      field: 'edges',
    });
  }

  const { colour, backEdges } = walk(entries, out, edges);
  for (const n of nodes) {
    if (!colour.get(n.id)) {
      throw new GraphError('AO_GRAPH_UNREACHABLE_NODE', `node "${n.id}" cannot be reached from an entry node (${entries.join(', ')})`, {
        field: `nodes.${n.id}`,
        details: { node: n.id, entries },
      });
    }
  }
  return { entries, backEdges, loops: loopsOf(nodes, edges, backEdges) };
}

/**
 * Iterative DFS from the entries, in order: colour 1 = on the stack, 2 = done. An edge into a
 * node on the stack is a back edge. A node left uncoloured is unreachable.
 */
function walk(
  entries: readonly string[],
  out: ReadonlyMap<string, number[]>,
  edges: ReadonlyArray<RawEdge>,
): { colour: Map<string, 0 | 1 | 2>; backEdges: Set<number> } {
  const colour = new Map<string, 0 | 1 | 2>();
  const backEdges = new Set<number>();
  for (const entry of entries) {
    if (colour.get(entry)) continue;
    const stack: Array<{ id: string; next: number }> = [{ id: entry, next: 0 }];
    colour.set(entry, 1);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      const outs = out.get(top.id)!;
      if (top.next >= outs.length) {
        colour.set(top.id, 2);
        stack.pop();
        continue;
      }
      const ei = outs[top.next++]!;
      const to = edges[ei]!.to;
      const c = colour.get(to) ?? 0;
      if (c === 1) backEdges.add(ei);
      else if (c === 0) {
        colour.set(to, 1);
        stack.push({ id: to, next: 0 });
      }
    }
  }
  return { colour, backEdges };
}

/** The nodes `start` reaches through `adj`, itself included. */
function reach(start: string, adj: ReadonlyMap<string, string[]>): Set<string> {
  const seen = new Set([start]);
  const todo = [start];
  while (todo.length) {
    for (const m of adj.get(todo.pop()!)!) {
      if (!seen.has(m)) {
        seen.add(m);
        todo.push(m);
      }
    }
  }
  return seen;
}

/** Each back edge's loop and its body; a loop without a node with `maxIterations` is refused. */
function loopsOf<I>(nodes: ReadonlyArray<NodeDef<I>>, edges: ReadonlyArray<RawEdge>, backEdges: ReadonlySet<number>): GraphAnalysis['loops'] {
  // Forward (DAG) adjacency, to find the body of each loop: nodes reachable from the loop head
  // that can reach the back edge's source.
  const fwd = new Map<string, string[]>(nodes.map((n) => [n.id, []]));
  const rev = new Map<string, string[]>(nodes.map((n) => [n.id, []]));
  edges.forEach((e, i) => {
    if (backEdges.has(i)) return;
    fwd.get(e.from)!.push(e.to);
    rev.get(e.to)!.push(e.from);
  });
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const loops: GraphAnalysis['loops'] = [];
  for (const ei of [...backEdges].sort((a, b) => a - b)) {
    const { from, to } = edges[ei]!;
    const down = reach(to, fwd);
    const up = reach(from, rev);
    const body = nodes.map((n) => n.id).filter((id) => down.has(id) && up.has(id));
    if (!body.some((id) => byId.get(id)!.maxIterations !== undefined)) {
      throw new GraphError(
        'AO_GRAPH_UNBOUNDED_CYCLE',
        `cycle ${[...body, to].join(' -> ')} has no node with maxIterations; set maxIterations on one of ${body.join(', ')}`,
        { field: `edges[${ei}]`, details: { from, to, body } },
      );
    }
    loops.push({ from, to, body });
  }
  return loops;
}
