import type { Envelope } from '../api/types';

export interface Lane {
  key: string;
  label: string;
  /** What kind of actor: for colour. */
  kind: 'supervisor' | 'budget' | 'node' | 'branch' | 'llm' | 'tool' | 'other';
  /** The graph node the lane's actor runs (a node's lane and its branches'), if any. */
  node?: string;
}

/** More branches than this under one node share one lane (`analyse/branch-*`). */
export const MAX_BRANCH_LANES = 8;

/** An actor path without its iteration and attempt (`supervisor/draft@2.1` -> `supervisor/draft`). */
export const actorKey = (path: string): string => path.replace(/@[^/]*/g, '');
const BRANCH = /^(.*)\/branch-\d+$/;

/**
 * The message flow's lanes: one per actor (iterations and attempts of a node share its lane), in
 * the order a reader expects: the supervisor, its budget actor, the graph's nodes in graph order
 * each followed by its branches, then the model and tool endpoints.
 */
export class Lanes {
  readonly lanes: Lane[] = [];
  private readonly byPath = new Map<string, number>();
  private readonly seen = new Set<string>();
  private readonly branchesOf = new Map<string, Set<string>>();

  constructor(private readonly nodeOrder: readonly string[]) {}

  /** Add the actors of these envelopes; true when the lanes changed. */
  add(events: Iterable<Envelope>): boolean {
    let changed = false;
    for (const e of events) {
      for (const p of [e.from, e.to]) {
        const k = actorKey(p);
        if (this.seen.has(k)) continue;
        this.seen.add(k);
        const m = BRANCH.exec(k);
        if (m) {
          const set = this.branchesOf.get(m[1]!) ?? new Set<string>();
          set.add(k);
          this.branchesOf.set(m[1]!, set);
        }
        changed = true;
      }
    }
    if (changed) this.rebuild();
    return changed;
  }

  /** The lane index of an actor path. */
  of(path: string): number {
    const k = actorKey(path);
    const i = this.byPath.get(k);
    if (i !== undefined) return i;
    const m = BRANCH.exec(k);
    return (m && this.byPath.get(`${m[1]}/branch-*`)) ?? 0;
  }

  private rank(k: string): [number, number, string] {
    if (k === 'supervisor') return [0, 0, k];
    if (k === 'supervisor/budget') return [1, 0, k];
    const node = /^supervisor\/([^/]+)/.exec(k)?.[1];
    if (node !== undefined && this.nodeOrder.includes(node)) return [2, this.nodeOrder.indexOf(node), k];
    if (k.startsWith('supervisor/')) return [3, 0, k];
    if (k.startsWith('llm/')) return [4, 0, k];
    if (k.startsWith('tool/')) return [5, 0, k];
    return [6, 0, k];
  }

  private rebuild(): void {
    const keys = new Set<string>();
    for (const k of this.seen) {
      const m = BRANCH.exec(k);
      keys.add(m && (this.branchesOf.get(m[1]!)?.size ?? 0) > MAX_BRANCH_LANES ? `${m[1]}/branch-*` : k);
    }
    const branchNo = (k: string) => Number(/branch-(\d+)$/.exec(k)?.[1] ?? -1);
    const sorted = [...keys].sort((a, b) => {
      const [ra, ia] = this.rank(a);
      const [rb, ib] = this.rank(b);
      if (ra !== rb) return ra - rb;
      if (ia !== ib) return ia - ib;
      // A node's own lane before its branches, branches by number.
      const da = a.split('/').length;
      const db = b.split('/').length;
      if (da !== db) return da - db;
      const ba = branchNo(a);
      const bb = branchNo(b);
      return ba !== bb ? ba - bb : a.localeCompare(b);
    });
    this.lanes.length = 0;
    this.byPath.clear();
    sorted.forEach((key, i) => {
      const node = /^supervisor\/([^/]+)/.exec(key)?.[1];
      this.lanes.push({ key, label: labelOf(key), kind: kindOf(key), ...(node && node !== 'budget' ? { node } : {}) });
      this.byPath.set(key, i);
    });
    // Grouped branches resolve through the `branch-*` lane.
    for (const k of this.seen) {
      const m = BRANCH.exec(k);
      if (m && !this.byPath.has(k)) this.byPath.set(k, this.byPath.get(`${m[1]}/branch-*`)!);
    }
  }
}

/** A lane's label: a branch reads `branch-2` (under its node's lane, in its node's colour), never `analyse/bran…`. */
function labelOf(key: string): string {
  if (key === 'supervisor') return 'supervisor';
  const branch = /\/(branch-(\d+|\*))$/.exec(key);
  if (branch) return branch[1]!;
  return key.startsWith('supervisor/') ? key.slice('supervisor/'.length) : key;
}

function kindOf(key: string): Lane['kind'] {
  if (key === 'supervisor') return 'supervisor';
  if (key === 'supervisor/budget') return 'budget';
  if (key.startsWith('llm/')) return 'llm';
  if (key.startsWith('tool/')) return 'tool';
  if (/\/branch-(\d+|\*)$/.test(key)) return 'branch';
  if (key.startsWith('supervisor/')) return 'node';
  return 'other';
}
