import type { Envelope } from '../api/types';
import { executions } from './executions';
import type { ExecutionView } from './executions';

/** `GET /runs/:a/diff/:b`. */
export interface RunDiff {
  a: string;
  b: string;
  identical: boolean;
  events: { a: number; b: number };
  first: { actor: string; index: number; a: Gist | null; b: Gist | null; diff: string[] } | null;
  nodes: Array<{ node: string; a: unknown; b: unknown }>;
}
export interface Gist {
  seq: number;
  type: string;
  from: string;
  to: string;
  payload: unknown;
}

/** One actor of either run, side by side: its executions in run a and in run b. */
export interface CompareRow {
  actor: string;
  node: string;
  a: ExecutionView | undefined;
  b: ExecutionView | undefined;
  /** The actor where the runs first differ. */
  first: boolean;
  /** Both ran it and their outputs differ, or only one ran it. */
  differs: boolean;
}

/** Sorted keys: two outputs equal as data compare equal as text. */
const canonical = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) =>
    x && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x as Record<string, unknown>).sort(([p], [q]) => p.localeCompare(q)))
      : x,
  ) ?? 'undefined';

/**
 * Two runs aligned by actor (each node execution's actor: `supervisor/draft@2.1`), in the order
 * they ran in `a` then those only `b` ran; the first divergence's actor flagged.
 */
export function compareRows(a: readonly Envelope[], b: readonly Envelope[], diff: RunDiff): CompareRow[] {
  const xa = executions(a);
  const xb = executions(b);
  const byA = new Map(xa.map((x) => [x.actor, x]));
  const byB = new Map(xb.map((x) => [x.actor, x]));
  const actors = [...new Set([...xa.map((x) => x.actor), ...xb.map((x) => x.actor)])];
  const first = diff.first?.actor;
  return actors.map((actor) => {
    const x = byA.get(actor);
    const y = byB.get(actor);
    // A call's emitter is the execution's actor or one below it (a branch): the first divergence belongs to the closest.
    const isFirst = first !== undefined && (first === actor || (first.startsWith(`${actor}/`) && !actors.includes(first)));
    return {
      actor,
      node: (x ?? y)!.node,
      a: x,
      b: y,
      first: isFirst,
      differs: !x || !y || x.status !== y.status || canonical(x.output) !== canonical(y.output),
    };
  });
}
