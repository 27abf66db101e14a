import { GraphError } from './errors.js';
import { toGraphDef } from './builder.js';
import type { GraphBuilder } from './builder.js';
import type { GraphDef } from './types.js';

/**
 * The graphs a node can run, by name. Registering validates the graph again, now against the
 * tool registry: every tool a node lists must exist.
 */
export class GraphRegistry {
  private readonly graphs = new Map<string, GraphDef<unknown>>();

  constructor(private readonly hasTool: (name: string) => boolean) {}

  register<I>(g: GraphBuilder<I> | GraphDef<I>): GraphDef<I> {
    const def = toGraphDef(g);
    for (const n of def.nodes) {
      n.tools.forEach((t, i) => {
        if (!this.hasTool(t)) {
          throw new GraphError('AO_GRAPH_UNKNOWN_TOOL', `node "${n.id}" of graph "${def.name}" lists tool "${t}", which is not registered`, {
            field: `nodes.${n.id}.tools[${i}]`,
            details: { tool: t },
          });
        }
      });
    }
    const existing = this.graphs.get(def.name);
    if (existing && existing.version !== def.version) {
      throw new GraphError('AO_GRAPH_ALREADY_REGISTERED', `a different graph named "${def.name}" is already registered`, {
        field: 'name',
      });
    }
    this.graphs.set(def.name, def as unknown as GraphDef<unknown>);
    return def;
  }

  get(name: string): GraphDef<unknown> | undefined {
    return this.graphs.get(name);
  }

  list(): GraphDef<unknown>[] {
    return [...this.graphs.values()].sort((a, b) => a.name.localeCompare(b.name));
  }
}
