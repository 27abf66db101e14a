export interface LayoutEdge {
  from: string;
  to: string;
  /** A loop's way back: ignored for layering, so loops do not stretch the drawing. */
  back?: boolean;
}

export interface LayoutOptions {
  nodeWidth: number;
  nodeHeight: number;
  gapX: number;
  gapY: number;
}

/**
 * A layered (Sugiyama-style) layout of a graph, top to bottom: each node sits one layer below its
 * deepest predecessor (longest path over forward edges), and nodes within a layer are ordered by
 * the mean position of their neighbours, sweeping down and up a few times to cut crossings.
 * Returns each node's top-left corner.
 */
export function layeredLayout(nodes: readonly string[], edges: readonly LayoutEdge[], o: LayoutOptions): Record<string, { x: number; y: number }> {
  const fwd = edges.filter((e) => !e.back && e.from !== e.to && nodes.includes(e.from) && nodes.includes(e.to));
  const preds = new Map<string, string[]>(nodes.map((n) => [n, []]));
  const succs = new Map<string, string[]>(nodes.map((n) => [n, []]));
  for (const e of fwd) {
    preds.get(e.to)!.push(e.from);
    succs.get(e.from)!.push(e.to);
  }

  // Longest path from the sources (forward edges form a DAG; a cycle left unmarked is cut by the guard).
  const layer = new Map<string, number>();
  const visiting = new Set<string>();
  const depth = (n: string): number => {
    const known = layer.get(n);
    if (known !== undefined) return known;
    if (visiting.has(n)) return 0;
    visiting.add(n);
    const d = Math.max(-1, ...preds.get(n)!.map(depth)) + 1;
    visiting.delete(n);
    layer.set(n, d);
    return d;
  };
  for (const n of nodes) depth(n);

  const rows: string[][] = [];
  for (const n of nodes) (rows[layer.get(n)!] ??= []).push(n);
  const posIn = new Map<string, number>();
  const index = () => rows.forEach((r) => r.forEach((n, i) => posIn.set(n, i)));
  index();
  const sweep = (r: string[], neighbours: Map<string, string[]>) => {
    const bary = new Map(
      r.map((n, i) => {
        const ns = neighbours.get(n)!;
        return [n, ns.length ? ns.reduce((s, m) => s + posIn.get(m)!, 0) / ns.length : i] as const;
      }),
    );
    r.sort((a, b) => bary.get(a)! - bary.get(b)!);
  };
  for (let pass = 0; pass < 4; pass++) {
    for (let i = 1; i < rows.length; i++) {
      sweep(rows[i]!, preds);
      index();
    }
    for (let i = rows.length - 2; i >= 0; i--) {
      sweep(rows[i]!, succs);
      index();
    }
  }

  const out: Record<string, { x: number; y: number }> = {};
  rows.forEach((r, li) => {
    r.forEach((n, i) => {
      out[n] = { x: (i - (r.length - 1) / 2) * (o.nodeWidth + o.gapX), y: li * (o.nodeHeight + o.gapY) };
    });
  });
  return out;
}
