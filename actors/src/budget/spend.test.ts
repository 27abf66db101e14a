import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { heldTotal, noSpend, plusSettled } from '@ao/graphs/spend';
import type { Held, Spent } from '@ao/graphs/spend';
import { newLedger, release, reserve, settle } from './ledger.js';
import type { Ledger, Reservation } from './ledger.js';

// The inspector folds a run's budget envelopes with @ao/graphs/spend; the budget actor keeps its
// ledger with ./ledger.ts. Any sequence of grants, settlements and releases must leave both with
// the same figures, or the inspector's gauges would show another budget than the one enforced.
type Op =
  | { kind: 'reserve'; key: string; node: string; tokens: number; usd: number; tool?: string }
  | { kind: 'settle'; key: string; tokens: number; usd: number }
  | { kind: 'release'; key: string };

const key = fc.constantFrom('k1', 'k2', 'k3', 'k4', 'k5');
const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('reserve' as const),
    key,
    node: fc.constantFrom('a', 'b'),
    tokens: fc.nat(5000),
    usd: fc.double({ min: 0, max: 2, noNaN: true }),
    tool: fc.option(fc.constantFrom('search', 'refund'), { nil: undefined }),
  }),
  fc.record({ kind: fc.constant('settle' as const), key, tokens: fc.nat(5000), usd: fc.double({ min: 0, max: 2, noNaN: true }) }),
  fc.record({ kind: fc.constant('release' as const), key }),
);

/** The inspector's way (inspector/src/lib/model/fold.ts): reservations by key, sums with the shared arithmetic. */
function fold(ops: Op[]): { used: Spent; byNode: Record<string, Spent>; held: Spent } {
  const held = new Map<string, Held & { node: string }>();
  let used = noSpend();
  const byNode: Record<string, Spent> = {};
  for (const o of ops) {
    if (o.kind === 'reserve') held.set(o.key, { node: o.node, tokens: o.tokens, usd: o.usd, ...(o.tool ? { tool: o.tool } : {}) });
    else if (o.kind === 'release') held.delete(o.key);
    else {
      const r = held.get(o.key);
      if (!r) continue;
      held.delete(o.key);
      used = plusSettled(used, r, o);
      byNode[r.node] = plusSettled(byNode[r.node] ?? noSpend(), r, o);
    }
  }
  return { used, byNode, held: heldTotal(held.values()) };
}

function ledger(ops: Op[]): Ledger {
  let l = newLedger({ tokens: 1_000_000 });
  for (const o of ops) {
    if (o.kind === 'reserve') {
      const r: Reservation = { node: o.node, actor: `supervisor/${o.node}`, tokens: o.tokens, usd: o.usd, ...(o.tool ? { tool: o.tool } : {}) };
      l = reserve(l, o.key, r);
    } else if (o.kind === 'release') l = release(l, o.key);
    else l = settle(l, o.key, { tokens: o.tokens, usd: o.usd });
  }
  return l;
}

describe('the spending arithmetic the inspector shares (@ao/graphs/spend)', () => {
  it('agrees with the budget ledger on what was used, by the run and by each node, and on what calls in flight hold', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const l = ledger(ops);
        const f = fold(ops);
        expect(f.used).toEqual(l.used);
        expect(f.byNode).toEqual(l.byNode);
        expect(f.held).toEqual(heldTotal(Object.values(l.reserved)));
      }),
      { numRuns: 300 },
    );
  });

  it('counts a settled tool call once for its tool, and an LLM call for its tokens and dollars only', () => {
    const afterTool = plusSettled(noSpend(), { tool: 'search' }, { tokens: 0, usd: 0 });
    expect(plusSettled(afterTool, {}, { tokens: 120, usd: 0.5 })).toEqual({ tokens: 120, tools: 1, usd: 0.5, perTool: { search: 1 } });
    expect(
      heldTotal([
        { tokens: 10, usd: 1 },
        { tokens: 0, usd: 0, tool: 'search' },
        { tokens: 0, usd: 0, tool: 'search' },
      ]),
    ).toEqual({ tokens: 10, tools: 2, usd: 1, perTool: { search: 2 } });
  });
});
