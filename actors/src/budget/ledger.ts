/**
 * The budget ledger of a run, as pure functions over plain data: what the budget actor decides
 * for each request, and how settlements and releases change it. Tests (and the property test)
 * drive these directly.
 *
 * Rules: an LLM call reserves its maximum cost (prompt tokens + max output tokens) before it runs;
 * if less remains, it may be granted a smaller `maxTokens` (at least MIN_OUTPUT_TOKENS), else it
 * is refused. A tool call reserves one call of its tool. Reservations count as spent until the
 * call settles with its actual usage (or is released), so concurrent callers can never together
 * exceed a limit. Node sub-budgets are checked as well as the run's.
 */
export interface Limits {
  tokens?: number;
  tools?: number;
  usd?: number;
  perTool?: Record<string, number>;
}

export interface Spent {
  tokens: number;
  tools: number;
  usd: number;
  perTool: Record<string, number>;
}

export interface Reservation {
  node: string;
  actor: string;
  tokens: number;
  usd: number;
  tool?: string;
}

/** Soft limits of the run: passing one makes the run wait for a person (see budget escalation). */
export interface SoftLimits {
  tokens?: number;
  tools?: number;
  usd?: number;
}

export interface Ledger {
  limits: Limits;
  /** The run's soft limits as raised so far by people's grants. */
  soft?: SoftLimits;
  nodeLimits: Record<string, Limits>;
  used: Spent;
  byNode: Record<string, Spent>;
  reserved: Record<string, Reservation>;
}

export type BudgetRequest =
  | { kind: 'llm'; key: string; node: string; actor: string; promptTokens: number; maxTokens: number; model: string }
  | { kind: 'tool'; key: string; node: string; actor: string; tool: string };

export type LimitName = 'tokens' | 'tools' | 'usd' | 'perTool' | 'wallClockSec';

export type Decision =
  | { grant: true; reservation: Reservation; maxTokens?: number }
  | {
      grant: false;
      limit: LimitName;
      /** Whose limit: the run's, or a node's sub-budget. */
      scope: 'run' | `node:${string}`;
      tool?: string;
      value: number;
      used: number;
      /** Whether the run must stop (a per-tool cap only refuses that tool). */
      stop: boolean;
      /** A soft limit: the request is held while a person decides (grant, deny, fork). */
      soft?: true;
    };

/** Price per million tokens, by model. */
export type PriceTable = Record<string, { input: number; output: number }>;

export const MIN_OUTPUT_TOKENS = 16;

const empty = (): Spent => ({ tokens: 0, tools: 0, usd: 0, perTool: {} });

export function newLedger(limits: Limits & { soft?: SoftLimits }, nodeLimits: Record<string, Limits> = {}): Ledger {
  const { soft, ...hard } = limits;
  return { limits: hard, nodeLimits, used: empty(), byNode: {}, reserved: {}, ...(soft ? { soft: { ...soft } } : {}) };
}

/** A person granted more: raise the soft limits by these amounts (never past the hard limits, which stay). */
export function raise(l: Ledger, by: SoftLimits): Ledger {
  const soft = { ...l.soft };
  for (const k of ['tokens', 'tools', 'usd'] as const) {
    const cur = soft[k];
    if (cur === undefined || by[k] === undefined) continue;
    const hard = l.limits[k];
    soft[k] = hard !== undefined ? Math.min(hard, cur + by[k]) : cur + by[k];
  }
  return { ...l, soft };
}

/** Price of a call; a model missing from the table costs the `*` entry's price (or nothing). */
export function priceOf(prices: PriceTable, model: string, input: number, output: number): number {
  const p = prices[model] ?? prices['*'];
  return p ? (input * p.input + output * p.output) / 1_000_000 : 0;
}

/**
 * Price to reserve before a call, when the model that will answer may not be known yet (a profile
 * name): that model's price if the table has it, else the highest price in the table, so a
 * reservation is never below what the call can cost.
 */
export function reservePrice(prices: PriceTable, model: string, input: number, output: number): number {
  if (prices[model]) return priceOf(prices, model, input, output);
  let max = 0;
  for (const p of Object.values(prices)) max = Math.max(max, (input * p.input + output * p.output) / 1_000_000);
  return max;
}

/** Spent plus reserved, for the run or for one node. */
function committed(l: Ledger, node?: string): Spent {
  const base = node ? (l.byNode[node] ?? empty()) : l.used;
  const out: Spent = { tokens: base.tokens, tools: base.tools, usd: base.usd, perTool: { ...base.perTool } };
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

/** A soft limit that still means something: below its hard limit (once raised to it, the hard limit decides). */
function softOf(l: Ledger, k: 'tokens' | 'tools' | 'usd'): number | undefined {
  const soft = l.soft?.[k];
  const hard = l.limits[k];
  return soft !== undefined && (hard === undefined || soft < hard) ? soft : undefined;
}

export function decide(l: Ledger, req: BudgetRequest, prices: PriceTable = {}): Decision {
  const scopes: Array<{ scope: 'run' | `node:${string}`; limits: Limits; c: Spent }> = [{ scope: 'run', limits: l.limits, c: committed(l) }];
  const nl = l.nodeLimits[req.node];
  if (nl) scopes.push({ scope: `node:${req.node}`, limits: nl, c: committed(l, req.node) });

  if (req.kind === 'tool') {
    for (const { scope, limits, c } of scopes) {
      const cap = limits.perTool?.[req.tool];
      if (cap !== undefined && (c.perTool[req.tool] ?? 0) + 1 > cap) {
        return { grant: false, limit: 'perTool', scope, tool: req.tool, value: cap, used: c.perTool[req.tool] ?? 0, stop: false };
      }
      if (limits.tools !== undefined && c.tools + 1 > limits.tools) {
        return { grant: false, limit: 'tools', scope, value: limits.tools, used: c.tools, stop: true };
      }
    }
    const c = committed(l);
    const softTools = softOf(l, 'tools');
    if (softTools !== undefined && c.tools + 1 > softTools) {
      return { grant: false, limit: 'tools', scope: 'run', value: softTools, used: c.tools, stop: false, soft: true };
    }
    return { grant: true, reservation: { node: req.node, actor: req.actor, tokens: 0, usd: 0, tool: req.tool } };
  }

  let maxTokens = req.maxTokens;
  for (const { scope, limits, c } of scopes) {
    if (limits.tokens === undefined) continue;
    const left = limits.tokens - c.tokens;
    if (left - req.promptTokens < Math.min(MIN_OUTPUT_TOKENS, req.maxTokens)) {
      return { grant: false, limit: 'tokens', scope, value: limits.tokens, used: c.tokens, stop: true };
    }
    maxTokens = Math.min(maxTokens, left - req.promptTokens);
  }
  const usd = reservePrice(prices, req.model, req.promptTokens, maxTokens);
  for (const { scope, limits, c } of scopes) {
    if (limits.usd !== undefined && c.usd + usd > limits.usd) {
      return { grant: false, limit: 'usd', scope, value: limits.usd, used: c.usd, stop: true };
    }
  }
  // Soft limits: the whole call must fit (a person decides rather than an answer cut short).
  const run = scopes[0]!.c;
  const softTokens = softOf(l, 'tokens');
  if (softTokens !== undefined && run.tokens + req.promptTokens + maxTokens > softTokens) {
    return { grant: false, limit: 'tokens', scope: 'run', value: softTokens, used: run.tokens, stop: false, soft: true };
  }
  const softUsd = softOf(l, 'usd');
  if (softUsd !== undefined && run.usd + usd > softUsd) {
    return { grant: false, limit: 'usd', scope: 'run', value: softUsd, used: run.usd, stop: false, soft: true };
  }
  const reservation: Reservation = { node: req.node, actor: req.actor, tokens: req.promptTokens + maxTokens, usd };
  return { grant: true, reservation, ...(maxTokens < req.maxTokens ? { maxTokens } : {}) };
}

/** Record a grant's reservation (the budget actor's state after a grant). */
export function reserve(l: Ledger, key: string, r: Reservation): Ledger {
  return { ...l, reserved: { ...l.reserved, [key]: r } };
}

/** A call finished: its actual usage replaces its reservation. */
export function settle(l: Ledger, key: string, actual: { tokens: number; usd: number; tool?: string }): Ledger {
  const r = l.reserved[key];
  if (!r) return l; // settled already (a redelivery), or never granted
  const { [key]: _done, ...reserved } = l.reserved;
  const add = (s: Spent): Spent => ({
    tokens: s.tokens + actual.tokens,
    usd: s.usd + actual.usd,
    tools: s.tools + (r.tool ? 1 : 0),
    perTool: r.tool ? { ...s.perTool, [r.tool]: (s.perTool[r.tool] ?? 0) + 1 } : s.perTool,
  });
  return { ...l, reserved, used: add(l.used), byNode: { ...l.byNode, [r.node]: add(l.byNode[r.node] ?? empty()) } };
}

/** A call that never ran (aborted, failed before the provider charged): free its reservation. */
export function release(l: Ledger, key: string): Ledger {
  if (!l.reserved[key]) return l;
  const { [key]: _gone, ...reserved } = l.reserved;
  return { ...l, reserved };
}
