/**
 * The arithmetic of a run's spending, shared by the budget ledger's readers: the inspector folds a
 * run's `budget.*` envelopes with it (inspector/src/lib/model/fold.ts), by the rules of the budget
 * actor's ledger (actors/src/budget/ledger.ts; actors/src/budget/spend.test.ts checks the two
 * agree). Plain functions over plain data, no import: the inspector's bundle takes it as it is
 * (`@ao/graphs/spend`).
 */

/** Settled spending in one scope (the run, a node): tokens, dollars, tool calls, and calls per tool. */
export interface Spent {
  tokens: number;
  tools: number;
  usd: number;
  perTool: Record<string, number>;
}

/** What a call in flight holds (its reservation): an LLM call its tokens and dollars, a tool call one call of its tool. */
export interface Held {
  tokens: number;
  usd: number;
  tool?: string;
}

/** Nothing spent. */
export const noSpend = (): Spent => ({ tokens: 0, tools: 0, usd: 0, perTool: {} });

/**
 * `s` with one more settled call: the tokens and dollars it used, and one call of its tool if it
 * was a tool call (the reservation says which).
 */
export function plusSettled(s: Spent, held: Pick<Held, 'tool'>, actual: { tokens: number; usd: number }): Spent {
  return {
    tokens: s.tokens + actual.tokens,
    usd: s.usd + actual.usd,
    tools: s.tools + (held.tool ? 1 : 0),
    perTool: held.tool ? { ...s.perTool, [held.tool]: (s.perTool[held.tool] ?? 0) + 1 } : s.perTool,
  };
}

/** What the calls in flight hold together. */
export function heldTotal(reservations: Iterable<Held>): Spent {
  let total = noSpend();
  for (const r of reservations) total = plusSettled(total, r, r);
  return total;
}
