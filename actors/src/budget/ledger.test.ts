import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decide, MIN_OUTPUT_TOKENS, newLedger, priceOf, raise, release, reservePrice, reserve, settle } from './ledger.js';
import type { BudgetRequest, Decision, Ledger, Limits, PriceTable, Reservation } from './ledger.js';

/** Fixed seed of the property tests in this file (fast-check `seed`), so a failure reproduces. */
const SEED = 424242;

let n = 0;
const llm = (o: Partial<Extract<BudgetRequest, { kind: 'llm' }>> = {}): BudgetRequest => ({
  kind: 'llm',
  key: `k${++n}`,
  node: 'a',
  actor: 'supervisor/a-1.1',
  promptTokens: 100,
  maxTokens: 200,
  model: 'm',
  ...o,
});
const tool = (name: string, o: Partial<Extract<BudgetRequest, { kind: 'tool' }>> = {}): BudgetRequest => ({
  kind: 'tool',
  key: `k${++n}`,
  node: 'a',
  actor: 'supervisor/a-1.1',
  tool: name,
  ...o,
});

type Granted = Extract<Decision, { grant: true }>;
type Refused = Extract<Decision, { grant: false }>;
function granted(d: Decision): Granted {
  if (!d.grant) throw new Error(`expected a grant, got a refusal: ${JSON.stringify(d)}`);
  return d;
}
function refused(d: Decision): Refused {
  if (d.grant) throw new Error(`expected a refusal, got a grant: ${JSON.stringify(d)}`);
  return d;
}

/** Decide and, on a grant, reserve: what the budget actor does with one request. */
function ask(l: Ledger, req: BudgetRequest, prices: PriceTable = {}): { l: Ledger; d: Decision } {
  const d = decide(l, req, prices);
  return { l: d.grant ? reserve(l, req.key, d.reservation) : l, d };
}

/** Ask, then settle at the whole reservation: usage that is spent, not in flight. */
function spend(l: Ledger, req: BudgetRequest, prices: PriceTable = {}): Ledger {
  const d = granted(decide(l, req, prices));
  return settle(reserve(l, req.key, d.reservation), req.key, {
    tokens: d.reservation.tokens,
    usd: d.reservation.usd,
    ...(d.reservation.tool ? { tool: d.reservation.tool } : {}),
  });
}

/** Deep-freeze a value, so a test fails if a "pure" function mutates its input. */
function frozen<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) frozen(x);
  }
  return v;
}

describe('decide: LLM calls against a tokens limit', () => {
  it('grants a call that fits, reserving prompt plus max output tokens, and leaves maxTokens as asked', () => {
    const l = frozen(newLedger({ tokens: 1000 }));
    const req = llm({ key: 'x', promptTokens: 100, maxTokens: 200 });
    const d = granted(decide(l, req));
    expect(d.reservation).toEqual({ node: 'a', actor: 'supervisor/a-1.1', tokens: 300, usd: 0 });
    expect(d.maxTokens).toBeUndefined();
    expect(l.reserved).toEqual({}); // decide is pure: the grant is recorded by reserve
    expect(reserve(l, 'x', d.reservation).reserved).toEqual({ x: d.reservation });
  });

  it('grants a call with a smaller maxTokens when less than prompt + maxTokens remains and nothing is in flight', () => {
    let l = newLedger({ tokens: 1000 });
    l = spend(l, llm({ promptTokens: 0, maxTokens: 700 })); // 700 used, 300 left
    const d = granted(decide(l, llm({ promptTokens: 100, maxTokens: 500 })));
    expect(d.maxTokens).toBe(200);
    expect(d.reservation.tokens).toBe(300);
  });

  it('refuses (and stops the run) when fewer than MIN_OUTPUT_TOKENS would be left for the output and nothing is in flight', () => {
    let l = newLedger({ tokens: 1000 });
    l = spend(l, llm({ promptTokens: 0, maxTokens: 900 - MIN_OUTPUT_TOKENS + 1 }));
    // 100 + MIN - 1 left: a prompt of 100 leaves MIN - 1 for output.
    const d = refused(decide(l, llm({ promptTokens: 100, maxTokens: 500 })));
    expect(d).toEqual({
      grant: false,
      limit: 'tokens',
      scope: 'run',
      value: 1000,
      used: 900 - MIN_OUTPUT_TOKENS + 1,
      reserved: 0,
      inFlight: 0,
      asked: 100 + MIN_OUTPUT_TOKENS,
      stop: true,
    });
  });

  it('makes a call that does not fit wait while calls in flight hold part of the limit, and decides it on what they really used', () => {
    let l = newLedger({ tokens: 1000 });
    l = ask(l, llm({ key: 'big', promptTokens: 100, maxTokens: 800 })).l; // 900 held
    const d = decide(l, llm({ promptTokens: 100, maxTokens: 500 }));
    expect(d).toEqual({
      grant: false,
      wait: true,
      limit: 'tokens',
      scope: 'run',
      value: 1000,
      used: 0,
      reserved: 900,
      inFlight: 1,
      asked: 100 + MIN_OUTPUT_TOKENS,
    });
    // Settled far below its reservation: the waiting call now fits whole.
    l = settle(l, 'big', { tokens: 150, usd: 0 });
    expect(granted(decide(l, llm({ promptTokens: 100, maxTokens: 500 }))).maxTokens).toBeUndefined();
  });

  it('waits rather than shrinking while calls in flight could free enough, and shrinks once none is in flight', () => {
    let l = newLedger({ tokens: 1000 });
    l = ask(l, llm({ key: 'x', promptTokens: 0, maxTokens: 400 })).l;
    expect(decide(l, llm({ promptTokens: 100, maxTokens: 800 }))).toMatchObject({ grant: false, wait: true });
    l = settle(l, 'x', { tokens: 400, usd: 0 }); // it used everything
    expect(granted(decide(l, llm({ promptTokens: 100, maxTokens: 800 }))).maxTokens).toBe(500);
  });

  it('does not wait for calls in flight that hold none of the limit (tool calls hold no tokens)', () => {
    let l = newLedger({ tokens: 100, tools: 10 });
    l = ask(l, tool('noop')).l;
    expect(refused(decide(l, llm({ promptTokens: 100, maxTokens: 50 })))).toMatchObject({ limit: 'tokens', stop: true, inFlight: 0 });
  });

  it('grants exactly MIN_OUTPUT_TOKENS of output when that is all that is left', () => {
    let l = newLedger({ tokens: 1000 });
    l = spend(l, llm({ promptTokens: 0, maxTokens: 900 - MIN_OUTPUT_TOKENS }));
    const d = granted(decide(l, llm({ promptTokens: 100, maxTokens: 500 })));
    expect(d.maxTokens).toBe(MIN_OUTPUT_TOKENS);
    expect(d.reservation.tokens).toBe(100 + MIN_OUTPUT_TOKENS);
  });

  it('grants a call asking for fewer than MIN_OUTPUT_TOKENS when exactly that many remain', () => {
    const l = newLedger({ tokens: 108 });
    const d = granted(decide(l, llm({ promptTokens: 100, maxTokens: 8 })));
    expect(d.maxTokens).toBeUndefined();
    expect(d.reservation.tokens).toBe(108);
    expect(refused(decide(l, llm({ promptTokens: 101, maxTokens: 8 }))).limit).toBe('tokens');
  });

  it('refuses a prompt that alone is bigger than what is left', () => {
    const d = refused(decide(newLedger({ tokens: 50 }), llm({ promptTokens: 60, maxTokens: 10 })));
    expect(d).toMatchObject({ limit: 'tokens', scope: 'run', value: 50, used: 0, stop: true });
  });

  it('grants anything when the run has no tokens limit', () => {
    const d = granted(decide(newLedger({ tools: 1 }), llm({ promptTokens: 1e9, maxTokens: 1e9 })));
    expect(d.maxTokens).toBeUndefined();
    expect(d.reservation.tokens).toBe(2e9);
  });
});

describe('decide: tool calls against tools and per-tool caps', () => {
  it('refuses the call past the tools limit and stops the run (it waited while the others were in flight)', () => {
    let l = newLedger({ tools: 2 });
    for (const t of ['a', 'b']) {
      const r = ask(l, tool(t, { key: t }));
      expect(r.d.grant).toBe(true);
      l = r.l;
    }
    expect(decide(l, tool('c'))).toEqual({ grant: false, wait: true, limit: 'tools', scope: 'run', value: 2, used: 0, reserved: 2, inFlight: 2, asked: 1 });
    l = settle(settle(l, 'a', { tokens: 0, usd: 0, tool: 'a' }), 'b', { tokens: 0, usd: 0, tool: 'b' });
    expect(refused(decide(l, tool('c')))).toEqual({
      grant: false,
      limit: 'tools',
      scope: 'run',
      value: 2,
      used: 2,
      reserved: 0,
      inFlight: 0,
      asked: 1,
      stop: true,
    });
  });

  it('refuses a tool past its per-tool cap without stopping the run, and still grants other tools', () => {
    let l = newLedger({ tools: 10, perTool: { web_search: 1 } });
    l = spend(l, tool('web_search'));
    const d = refused(decide(l, tool('web_search')));
    expect(d).toEqual({ grant: false, limit: 'perTool', scope: 'run', tool: 'web_search', value: 1, used: 1, reserved: 0, inFlight: 0, asked: 1, stop: false });
    expect(decide(l, tool('noop')).grant).toBe(true);
  });

  it('a tool reservation counts one call of its tool and no tokens', () => {
    const d = granted(decide(newLedger({ tokens: 1, tools: 1 }), tool('noop')));
    expect(d.reservation).toEqual({ node: 'a', actor: 'supervisor/a-1.1', tokens: 0, usd: 0, tool: 'noop' });
  });

  it('counts calls in flight (reserved, not settled) against the per-tool cap', () => {
    let l = newLedger({ perTool: { web_search: 2 } });
    l = ask(l, tool('web_search', { key: 'w1' })).l;
    l = ask(l, tool('web_search', { key: 'w2' })).l;
    expect(decide(l, tool('web_search')).grant).toBe(false);
    l = settle(l, 'w1', { tokens: 0, usd: 0, tool: 'web_search' });
    expect(decide(l, tool('web_search')).grant).toBe(false); // settled calls count too
    l = release(l, 'w2');
    expect(decide(l, tool('web_search')).grant).toBe(true); // a released call never happened
  });
});

describe('decide: node sub-budgets are checked with the run budget', () => {
  it('shrinks maxTokens to what the node has left, though the run has more', () => {
    const l = newLedger({ tokens: 10_000 }, { a: { tokens: 300 } });
    const d = granted(decide(l, llm({ node: 'a', promptTokens: 100, maxTokens: 500 })));
    expect(d.maxTokens).toBe(200);
    expect(granted(decide(l, llm({ node: 'b', promptTokens: 100, maxTokens: 500 }))).maxTokens).toBeUndefined();
  });

  it('refuses a node past its tokens sub-budget with scope node:<id>, while other nodes go on', () => {
    let l = newLedger({ tokens: 10_000 }, { a: { tokens: 300 } });
    l = spend(l, llm({ node: 'a', promptTokens: 100, maxTokens: 200 }));
    expect(refused(decide(l, llm({ node: 'a', promptTokens: 10, maxTokens: 100 })))).toEqual({
      grant: false,
      limit: 'tokens',
      scope: 'node:a',
      value: 300,
      used: 300,
      reserved: 0,
      inFlight: 0,
      asked: 26,
      stop: true,
    });
    expect(decide(l, llm({ node: 'b' })).grant).toBe(true);
  });

  it('a node within its sub-budget is still refused when the run has run out', () => {
    let l = newLedger({ tokens: 500 }, { a: { tokens: 400 } });
    l = spend(l, llm({ node: 'b', promptTokens: 0, maxTokens: 450 }));
    const d = granted(decide(l, llm({ node: 'a', promptTokens: 10, maxTokens: 100 })));
    expect(d.maxTokens).toBe(40); // the run's 50 left, not the node's 400
    l = settle(reserve(l, 'a1', d.reservation), 'a1', { tokens: 50, usd: 0 });
    expect(refused(decide(l, llm({ node: 'a', promptTokens: 10, maxTokens: 100 })))).toMatchObject({ limit: 'tokens', scope: 'run' });
  });

  it('per-tool caps and tools limits of a node refuse only that node, with its scope', () => {
    let l = newLedger({ tools: 10 }, { a: { tools: 3, perTool: { web_search: 1 } } });
    l = spend(l, tool('web_search', { node: 'a' }));
    expect(refused(decide(l, tool('web_search', { node: 'a' })))).toMatchObject({ limit: 'perTool', scope: 'node:a', tool: 'web_search', stop: false });
    expect(decide(l, tool('web_search', { node: 'b' })).grant).toBe(true);
    l = spend(l, tool('noop', { node: 'a' }));
    l = spend(l, tool('noop', { node: 'a' }));
    expect(refused(decide(l, tool('noop', { node: 'a' })))).toEqual({
      grant: false,
      limit: 'tools',
      scope: 'node:a',
      value: 3,
      used: 3,
      reserved: 0,
      inFlight: 0,
      asked: 1,
      stop: true,
    });
  });
});

describe('settle and release', () => {
  it('settle replaces the reservation with the actual usage, for the run and the node', () => {
    let l = newLedger({ tokens: 1000 });
    l = ask(l, llm({ key: 'x', node: 'a', promptTokens: 100, maxTokens: 800 })).l;
    expect(decide(l, llm({ promptTokens: 100, maxTokens: 500 })).grant).toBe(false);
    l = settle(l, 'x', { tokens: 150, usd: 0 });
    expect(l.reserved).toEqual({});
    expect(l.used).toEqual({ tokens: 150, tools: 0, usd: 0, perTool: {} });
    expect(l.byNode.a).toEqual({ tokens: 150, tools: 0, usd: 0, perTool: {} });
    expect(granted(decide(l, llm({ promptTokens: 100, maxTokens: 500 }))).maxTokens).toBeUndefined();
  });

  it('settling a tool call counts one call of its tool', () => {
    let l = newLedger({});
    l = ask(l, tool('noop', { key: 't', node: 'b' })).l;
    l = settle(l, 't', { tokens: 0, usd: 0, tool: 'noop' });
    expect(l.used).toEqual({ tokens: 0, tools: 1, usd: 0, perTool: { noop: 1 } });
    expect(l.byNode.b?.perTool).toEqual({ noop: 1 });
  });

  it('release frees a reservation without spending anything', () => {
    let l = newLedger({ tokens: 1000 });
    l = ask(l, llm({ key: 'x', promptTokens: 100, maxTokens: 900 })).l;
    l = release(l, 'x');
    expect(l.reserved).toEqual({});
    expect(l.used.tokens).toBe(0);
    expect(granted(decide(l, llm({ promptTokens: 100, maxTokens: 900 }))).maxTokens).toBeUndefined();
  });

  it('settling or releasing an unknown or already settled key is a no-op (same ledger back)', () => {
    let l = newLedger({ tokens: 1000 });
    expect(settle(l, 'nope', { tokens: 5, usd: 1 })).toBe(l);
    expect(release(l, 'nope')).toBe(l);
    l = ask(l, llm({ key: 'x' })).l;
    l = settle(l, 'x', { tokens: 10, usd: 0 });
    expect(settle(l, 'x', { tokens: 10, usd: 0 })).toBe(l); // a redelivered settlement
    expect(release(l, 'x')).toBe(l);
  });

  it('reserve, settle and release leave their input ledger untouched', () => {
    const l0 = frozen(newLedger({ tokens: 1000 }, { a: { tokens: 500 } }));
    const d = granted(decide(l0, llm({ key: 'x' })));
    const l1 = frozen(reserve(l0, 'x', d.reservation));
    const l2 = settle(l1, 'x', { tokens: 10, usd: 0 });
    expect(release(l1, 'x').reserved).toEqual({});
    expect(l0.reserved).toEqual({});
    expect(l1.reserved.x).toEqual(d.reservation);
    expect(l2.used.tokens).toBe(10);
  });
});

describe('usd pricing', () => {
  const prices: PriceTable = { big: { input: 10, output: 30 }, '*': { input: 1, output: 2 } };

  it('priceOf prices per million tokens, falls back to "*", and is free without either', () => {
    expect(priceOf(prices, 'big', 1_000_000, 1_000_000)).toBe(40);
    expect(priceOf(prices, 'other', 500_000, 250_000)).toBe(1);
    expect(priceOf({ big: { input: 10, output: 30 } }, 'other', 1e6, 1e6)).toBe(0);
  });

  it('reserves at the highest price in the table when the model that will answer is not in it (a profile name)', () => {
    expect(reservePrice(prices, 'default', 1_000_000, 1_000_000)).toBe(40);
    expect(reservePrice(prices, 'big', 1_000_000, 0)).toBe(10);
    expect(reservePrice({}, 'default', 1e6, 1e6)).toBe(0);
  });

  it('reserves the price of the prompt plus the granted output', () => {
    const d = granted(decide(newLedger({ usd: 100 }), llm({ model: 'big', promptTokens: 1000, maxTokens: 2000 }), prices));
    expect(d.reservation.usd).toBeCloseTo((1000 * 10 + 2000 * 30) / 1e6, 12);
  });

  it('prices the shrunk maxTokens, not the one asked', () => {
    const d = granted(decide(newLedger({ tokens: 1100, usd: 100 }), llm({ model: 'big', promptTokens: 1000, maxTokens: 2000 }), prices));
    expect(d.maxTokens).toBe(100);
    expect(d.reservation.usd).toBeCloseTo((1000 * 10 + 100 * 30) / 1e6, 12);
  });

  it('makes a call whose maximum price would pass the usd limit wait for calls in flight; settled for less, the same call fits', () => {
    let l = newLedger({ usd: 0.1 });
    const first = ask(l, llm({ key: 'x', model: 'big', promptTokens: 1000, maxTokens: 2000 }), prices); // 0.07
    l = first.l;
    const d = decide(l, llm({ model: 'big', promptTokens: 1000, maxTokens: 2000 }), prices);
    expect(d).toMatchObject({ grant: false, wait: true, limit: 'usd', scope: 'run', value: 0.1, used: 0, inFlight: 1 });
    if (!d.grant) expect(d.reserved).toBeCloseTo(0.07, 12);
    l = settle(l, 'x', { tokens: 1100, usd: priceOf(prices, 'big', 1000, 100) });
    expect(decide(l, llm({ model: 'big', promptTokens: 1000, maxTokens: 2000 }), prices).grant).toBe(true);
  });

  it('shrinks maxTokens to what the usd limit still pays for, as a tokens limit does', () => {
    // 0.03 usd: the prompt costs 0.01, leaving 0.02 for output at 30/M: 666 tokens.
    const d = granted(decide(newLedger({ usd: 0.03 }), llm({ model: 'big', promptTokens: 1000, maxTokens: 2000 }), prices));
    expect(d.maxTokens).toBe(666);
    expect(d.reservation.usd).toBeLessThanOrEqual(0.03);
    // An unknown model is reserved at the table's highest price: that row decides.
    const u = granted(decide(newLedger({ usd: 0.03 }), llm({ model: 'default', promptTokens: 1000, maxTokens: 2000 }), prices));
    expect(u.maxTokens).toBe(666);
  });

  it('refuses a call whose prompt and the useful minimum of output would pass the usd limit, with nothing in flight, and stops the run', () => {
    let l = newLedger({ usd: 0.1 });
    l = spend(l, llm({ key: 'x', model: 'big', promptTokens: 1000, maxTokens: 2000 }), prices); // 0.07 spent
    // 0.03 left: a prompt of 3000 costs 0.03 and leaves nothing for output.
    const d = refused(decide(l, llm({ model: 'big', promptTokens: 3000, maxTokens: 2000 }), prices));
    expect(d).toMatchObject({ limit: 'usd', scope: 'run', value: 0.1, stop: true, inFlight: 0 });
    expect(d.used).toBeCloseTo(0.07, 12);
  });

  it('checks a node usd sub-budget with its scope', () => {
    const l = newLedger({ usd: 1 }, { a: { usd: 0.01 } });
    expect(refused(decide(l, llm({ node: 'a', model: 'big', promptTokens: 1000, maxTokens: 2000 }), prices))).toMatchObject({
      limit: 'usd',
      scope: 'node:a',
      value: 0.01,
    });
    expect(decide(l, llm({ node: 'b', model: 'big', promptTokens: 1000, maxTokens: 2000 }), prices).grant).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Property: any interleaving of requests, settlements and releases (as from many concurrent
// branches, serialised by the budget actor) keeps used + reserved within every limit.
// ---------------------------------------------------------------------------------------------

const TOOLS = ['web_search', 'noop', 'stripe_refund'] as const;
const NODES = ['a', 'b', 'c'] as const;
const MODELS = ['cheap', 'big', 'unpriced'] as const;
const PRICES: PriceTable = { cheap: { input: 0.5, output: 1.5 }, big: { input: 15, output: 60 } };
const USD_EPS = 1e-9;

const limitsArb: fc.Arbitrary<Limits> = fc.record(
  {
    tokens: fc.integer({ min: 1, max: 5000 }),
    tools: fc.integer({ min: 1, max: 12 }),
    usd: fc.double({ min: 0.0001, max: 0.2, noNaN: true, noDefaultInfinity: true }),
    perTool: fc.dictionary(fc.constantFrom(...TOOLS), fc.integer({ min: 1, max: 5 }), { maxKeys: 3 }),
  },
  { requiredKeys: [] },
);

type Op =
  | { op: 'llm'; node: string; promptTokens: number; maxTokens: number; model: string }
  | { op: 'tool'; node: string; tool: string }
  | { op: 'settle'; pick: number; inFrac: number; outFrac: number }
  | { op: 'release'; pick: number }
  | { op: 'resettle'; pick: number };

const frac = fc.double({ min: 0, max: 1, noNaN: true });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('llm' as const),
    node: fc.constantFrom(...NODES),
    promptTokens: fc.integer({ min: 0, max: 1500 }),
    maxTokens: fc.integer({ min: 1, max: 2000 }),
    model: fc.constantFrom(...MODELS),
  }),
  fc.record({ op: fc.constant('tool' as const), node: fc.constantFrom(...NODES), tool: fc.constantFrom(...TOOLS) }),
  fc.record({ op: fc.constant('settle' as const), pick: fc.nat(), inFrac: frac, outFrac: frac }),
  fc.record({ op: fc.constant('release' as const), pick: fc.nat() }),
  fc.record({ op: fc.constant('resettle' as const), pick: fc.nat() }),
);

/** Independent tally of what is spent and reserved, per scope, kept by the test. */
interface Tally {
  tokens: number;
  tools: number;
  usd: number;
  perTool: Record<string, number>;
}
const zero = (): Tally => ({ tokens: 0, tools: 0, usd: 0, perTool: {} });

function within(t: Tally, lim: Limits | undefined): string | undefined {
  if (!lim) return undefined;
  if (lim.tokens !== undefined && t.tokens > lim.tokens) return `tokens ${t.tokens} > ${lim.tokens}`;
  if (lim.tools !== undefined && t.tools > lim.tools) return `tools ${t.tools} > ${lim.tools}`;
  if (lim.usd !== undefined && t.usd > lim.usd + USD_EPS) return `usd ${t.usd} > ${lim.usd}`;
  for (const [name, cap] of Object.entries(lim.perTool ?? {})) if ((t.perTool[name] ?? 0) > cap) return `perTool.${name} ${t.perTool[name]} > ${cap}`;
  return undefined;
}

/** Spent plus reserved in a ledger, for the run (node undefined) or one node, recomputed by the test. */
function committedOf(l: Ledger, node?: string): Tally {
  const out = zero();
  const base = node ? l.byNode[node] : l.used;
  if (base) {
    out.tokens = base.tokens;
    out.tools = base.tools;
    out.usd = base.usd;
    out.perTool = { ...base.perTool };
  }
  for (const r of Object.values(l.reserved)) {
    if (node && r.node !== node) continue;
    out.tokens += r.tokens;
    out.usd += r.usd;
    if (r.tool) {
      out.tools += 1;
      out.perTool[r.tool] = (out.perTool[r.tool] ?? 0) + 1;
    }
  }
  return out;
}

describe('ledger property: interleaved requests, settlements and releases', () => {
  it('never lets used + reserved pass any limit (tokens, tools, each per-tool cap, usd) of the run or a node, and settled usage stays within the limits when actual <= reserved', () => {
    fc.assert(
      fc.property(
        limitsArb,
        fc.dictionary(fc.constantFrom(...NODES), limitsArb, { maxKeys: 3 }),
        fc.array(opArb, { minLength: 1, maxLength: 120 }),
        (limits, nodeLimits, ops) => {
          let l = newLedger(limits, nodeLimits);
          // Calls in flight: granted, not yet settled or released.
          const inFlight: Array<{ key: string; req: BudgetRequest; r: Reservation; maxTokens: number }> = [];
          const done: string[] = [];
          // The test's own tally of settled usage, to check the ledger's arithmetic against.
          const settled = { run: zero(), nodes: {} as Record<string, Tally> };
          let k = 0;
          for (const op of ops) {
            if (op.op === 'llm' || op.op === 'tool') {
              const key = `req-${++k}`;
              const req: BudgetRequest =
                op.op === 'llm'
                  ? { kind: 'llm', key, node: op.node, actor: `supervisor/${op.node}`, promptTokens: op.promptTokens, maxTokens: op.maxTokens, model: op.model }
                  : { kind: 'tool', key, node: op.node, actor: `supervisor/${op.node}`, tool: op.tool };
              const d = decide(l, req, PRICES);
              if (d.grant) {
                const maxTokens = req.kind === 'llm' ? (d.maxTokens ?? req.maxTokens) : 0;
                if (req.kind === 'llm') {
                  // A grant never gives more than asked, nor less than the minimum output.
                  expect(maxTokens).toBeLessThanOrEqual(req.maxTokens);
                  expect(maxTokens).toBeGreaterThanOrEqual(Math.min(MIN_OUTPUT_TOKENS, req.maxTokens));
                  expect(d.reservation.tokens).toBe(req.promptTokens + maxTokens);
                  expect(d.reservation.usd).toBeCloseTo(reservePrice(PRICES, req.model, req.promptTokens, maxTokens), 12);
                }
                l = reserve(l, key, d.reservation);
                inFlight.push({ key, req, r: d.reservation, maxTokens });
              } else if (d.wait) {
                // It waits only while calls in flight in its scope hold some of the limit it failed.
                const scope = d.scope === 'run' ? undefined : d.scope.slice('node:'.length);
                const holding = Object.values(l.reserved).filter(
                  (r) =>
                    (!scope || r.node === scope) &&
                    (d.limit === 'tokens' ? r.tokens > 0 : d.limit === 'usd' ? r.usd > 0 : d.limit === 'tools' ? r.tool !== undefined : r.tool === d.tool),
                );
                expect(holding.length).toBeGreaterThan(0);
                expect(d.inFlight).toBe(holding.length);
              } else {
                // Refused: nothing in flight holds any of the limit it failed (else it would wait).
                expect(d.inFlight).toBe(0);
                // A refusal names a real limit of the scope it names, and only per-tool caps let the run go on.
                const scopeLimits = d.scope === 'run' ? limits : nodeLimits[d.scope.slice('node:'.length)];
                expect(scopeLimits).toBeDefined();
                expect(d.stop).toBe(d.limit !== 'perTool');
                if (d.limit === 'perTool') expect(scopeLimits!.perTool?.[d.tool!]).toBe(d.value);
                else expect(scopeLimits![d.limit as 'tokens' | 'tools' | 'usd']).toBe(d.value);
                // ...and it was needed: the request would not have fit.
                const c = committedOf(l, d.scope === 'run' ? undefined : d.scope.slice('node:'.length));
                if (d.limit === 'tools') expect(c.tools + 1).toBeGreaterThan(d.value);
                if (d.limit === 'perTool') expect((c.perTool[d.tool!] ?? 0) + 1).toBeGreaterThan(d.value);
                if (d.limit === 'tokens' && req.kind === 'llm')
                  expect(c.tokens + req.promptTokens + Math.min(MIN_OUTPUT_TOKENS, req.maxTokens)).toBeGreaterThan(d.value);
              }
            } else if (op.op === 'settle' || op.op === 'release') {
              if (!inFlight.length) continue;
              const [call] = inFlight.splice(op.pick % inFlight.length, 1);
              const { key, req, r, maxTokens } = call!;
              if (op.op === 'release') {
                l = release(l, key);
              } else {
                // Actual usage no more than reserved: input <= the prompt estimate, output <= granted.
                const actual =
                  req.kind === 'llm'
                    ? (() => {
                        const input = Math.floor(req.promptTokens * op.inFrac);
                        const output = Math.floor(maxTokens * op.outFrac);
                        return { tokens: input + output, usd: priceOf(PRICES, req.model, input, output) };
                      })()
                    : { tokens: 0, usd: 0, tool: req.tool };
                l = settle(l, key, actual);
                for (const t of [settled.run, (settled.nodes[r.node] ??= zero())]) {
                  t.tokens += actual.tokens;
                  t.usd += actual.usd;
                  if (r.tool) {
                    t.tools += 1;
                    t.perTool[r.tool] = (t.perTool[r.tool] ?? 0) + 1;
                  }
                }
              }
              done.push(key);
            } else {
              // A redelivered settlement (or a stray key) changes nothing.
              const key = done.length ? done[op.pick % done.length]! : 'never-granted';
              expect(settle(l, key, { tokens: 1_000_000, usd: 1_000 })).toBe(l);
              expect(release(l, key)).toBe(l);
            }
            // The invariant, after every step, for the run and every node.
            expect(within(committedOf(l), limits)).toBeUndefined();
            for (const node of NODES) expect(within(committedOf(l, node), nodeLimits[node])).toBeUndefined();
            expect(Object.keys(l.reserved).sort()).toEqual(inFlight.map((c) => c.key).sort());
          }
          // The ledger's settled figures are the test's own tally of the settlements.
          const same = (a: Tally, b: Tally) => {
            expect({ ...a, usd: 0 }).toEqual({ ...b, usd: 0 });
            expect(a.usd).toBeCloseTo(b.usd, 9);
          };
          same(l.used, settled.run);
          for (const node of NODES) same(l.byNode[node] ?? zero(), settled.nodes[node] ?? zero());
          // Settle what is still in flight at its full reservation: still within every limit.
          for (const c of inFlight.splice(0))
            l = settle(l, c.key, c.req.kind === 'tool' ? { tokens: 0, usd: 0, tool: c.req.tool } : { tokens: c.r.tokens, usd: c.r.usd });
          expect(l.reserved).toEqual({});
          expect(within(l.used, limits)).toBeUndefined();
          for (const node of NODES) expect(within(l.byNode[node] ?? zero(), nodeLimits[node])).toBeUndefined();
        },
      ),
      { seed: SEED, numRuns: 400 },
    );
  });

  it('the ledger’s settled usage equals the sum of the settlements, per run and per node', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...NODES), fc.constantFrom(...TOOLS, null), fc.nat({ max: 3000 })), { maxLength: 60 }), (calls) => {
        let l = newLedger({});
        const want = { run: zero(), nodes: {} as Record<string, Tally> };
        calls.forEach(([node, t, tokens], i) => {
          const key = `c${i}`;
          const req: BudgetRequest = t
            ? { kind: 'tool', key, node, actor: node, tool: t }
            : { kind: 'llm', key, node, actor: node, promptTokens: tokens, maxTokens: 10, model: 'cheap' };
          const d = granted(decide(l, req, PRICES));
          l = reserve(l, key, d.reservation);
          const actual = t ? { tokens: 0, usd: 0, tool: t } : { tokens, usd: priceOf(PRICES, 'cheap', tokens, 0) };
          l = settle(l, key, actual);
          for (const s of [want.run, (want.nodes[node] ??= zero())]) {
            s.tokens += actual.tokens;
            s.usd += actual.usd;
            if (t) {
              s.tools += 1;
              s.perTool[t] = (s.perTool[t] ?? 0) + 1;
            }
          }
        });
        expect(l.used).toEqual(want.run);
        for (const node of NODES) expect(l.byNode[node] ?? zero()).toEqual(want.nodes[node] ?? zero());
      }),
      { seed: SEED, numRuns: 200 },
    );
  });
});

describe('soft limits', () => {
  const llm = (key: string, maxTokens = 100) => ({ kind: 'llm' as const, key, node: 'n', actor: 'supervisor/n', promptTokens: 50, maxTokens, model: 'm' });

  it('a call that would pass a soft limit is held for a person (soft, not a stop), below the hard limit', () => {
    const l = newLedger({ tokens: 1000, soft: { tokens: 120 } });
    expect(decide(l, llm('a', 60))).toMatchObject({ grant: true });
    expect(decide(l, llm('a', 100))).toEqual({
      grant: false,
      limit: 'tokens',
      scope: 'run',
      value: 120,
      used: 0,
      reserved: 0,
      inFlight: 0,
      asked: 150,
      stop: false,
      soft: true,
    });
  });

  it('a grant raises the soft limit by the amount but never past the hard limit, where the hard limit decides again', () => {
    let l = newLedger({ tokens: 1000, soft: { tokens: 120 } });
    l = raise(l, { tokens: 500 });
    expect(l.soft).toEqual({ tokens: 620 });
    l = raise(l, { tokens: 5000 });
    expect(l.soft).toEqual({ tokens: 1000 });
    // Soft equal to hard means nothing: a call past it is refused and stops the run, never held.
    l = reserve(l, 'x', { node: 'n', actor: 'a', tokens: 990, usd: 0 });
    expect(decide(l, llm('b'))).toMatchObject({ grant: false, limit: 'tokens', wait: true });
    l = settle(l, 'x', { tokens: 990, usd: 0 });
    expect(decide(l, llm('b'))).toMatchObject({ grant: false, limit: 'tokens', stop: true });
    expect(decide(l, llm('b'))).not.toHaveProperty('soft');
  });

  it('tool calls have a soft limit too', () => {
    let l = newLedger({ tools: 5, soft: { tools: 1 } });
    l = reserve(l, 't1', { node: 'n', actor: 'a', tokens: 0, usd: 0, tool: 'x' });
    // Past it only because of a call in flight: it waits for that call first.
    expect(decide(l, { kind: 'tool', key: 't2', node: 'n', actor: 'a', tool: 'x' })).toMatchObject({ grant: false, wait: true, limit: 'tools', value: 1 });
    l = settle(l, 't1', { tokens: 0, usd: 0, tool: 'x' });
    expect(decide(l, { kind: 'tool', key: 't2', node: 'n', actor: 'a', tool: 'x' })).toMatchObject({
      grant: false,
      limit: 'tools',
      soft: true,
      stop: false,
      value: 1,
    });
  });
});
