import { canonicalJson } from '@ao/graphs';
import { payloadOf } from '../envelope/mod.js';
import type { Envelope } from '../envelope/mod.js';
import type { EnvelopeGist } from '../store/mod.js';
import { describeDivergence, emitterOf, gistOf, sameGist } from './describe.js';
import { CIRCUMSTANTIAL_TYPES } from './recording.js';

/** Events that describe a replay itself, or the world (a wait for capacity), not a decision of the run: left out of comparisons. */
const BOOKKEEPING = new Set(['run.replayed', 'replay.diverged', ...CIRCUMSTANTIAL_TYPES]);

export interface LogDifference {
  /** The actor whose decisions differ first. */
  actor: string;
  /** Position in the first log (0-based) of the first differing decision, or where it would be. */
  index: number;
  a: EnvelopeGist | null;
  b: EnvelopeGist | null;
  diff: string[];
}

export interface NodeOutputDifference {
  node: string;
  a: unknown;
  b: unknown;
}

export interface LogComparison {
  identical: boolean;
  events: { a: number; b: number };
  first: LogDifference | null;
  nodes: NodeOutputDifference[];
}

/** A node's latest output in a log (loops keep the last iteration's). */
function outputs(log: readonly Envelope[]): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const e of log) {
    const p = payloadOf(e, 'node.completed');
    if (p) out.set(p.node, p.output);
  }
  return out;
}

/**
 * Compare two runs' logs as decisions: actor by actor, each actor's envelopes in order (type,
 * recipient, payload; ids, seqs, times and run ids aside). Concurrent actors interleave
 * differently from run to run, so the global order is not compared; each actor's is. The first
 * difference is the one earliest in `a`; node outputs are compared by node.
 */
export function compareLogs(a: readonly Envelope[], b: readonly Envelope[], runIds: readonly string[]): LogComparison {
  const la = a.filter((e) => !BOOKKEEPING.has(e.type));
  const lb = b.filter((e) => !BOOKKEEPING.has(e.type));
  const group = (log: readonly Envelope[]) => {
    const m = new Map<string, Array<{ at: number; g: EnvelopeGist }>>();
    log.forEach((e, at) => {
      const k = emitterOf(e);
      const list = m.get(k) ?? [];
      list.push({ at, g: gistOf(e, runIds) });
      m.set(k, list);
    });
    return m;
  };
  const ga = group(la);
  const gb = group(lb);
  let first: LogDifference | null = null;
  for (const actor of new Set([...ga.keys(), ...gb.keys()])) {
    const xs = ga.get(actor) ?? [];
    const ys = gb.get(actor) ?? [];
    for (let i = 0; i < Math.max(xs.length, ys.length); i++) {
      const x = xs[i];
      const y = ys[i];
      if (x && y && sameGist(x.g, y.g)) continue;
      const index = x ? x.at : (xs.at(-1)?.at ?? -1) + 1;
      if (!first || index < first.index) {
        first = { actor, index, a: x?.g ?? null, b: y?.g ?? null, diff: describeDivergence(actor, x?.g ?? null, y?.g ?? null) };
      }
      break;
    }
  }
  const oa = outputs(la);
  const ob = outputs(lb);
  const nodes: NodeOutputDifference[] = [];
  for (const node of [...new Set([...oa.keys(), ...ob.keys()])].sort()) {
    const x = oa.get(node);
    const y = ob.get(node);
    if (canonicalJson(x ?? null) !== canonicalJson(y ?? null)) nodes.push({ node, a: x ?? null, b: y ?? null });
  }
  return { identical: first === null, events: { a: la.length, b: lb.length }, first, nodes };
}
