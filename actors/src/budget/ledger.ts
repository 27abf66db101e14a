/**
 * The budget ledger of a run, as pure functions over plain data: what the budget actor decides
 * for each request, and how settlements and releases change it. Tests (and the property test)
 * drive these directly.
 *
 * Rules: an LLM call reserves its maximum cost (prompt tokens + max output tokens) before it runs;
 * a tool call reserves one call of its tool. Reservations count as spent until the call settles
 * with its actual usage (or is released), so concurrent callers can never together exceed a limit.
 * A call that does not fit while other calls in flight hold part of the limit waits for them to
 * settle (they mostly use far less than they reserved); once none does, it is granted a smaller
 * `maxTokens` if at least MIN_OUTPUT_TOKENS of output fits (tokens and usd alike), else refused.
 * Node sub-budgets are checked as well as the run's.
 */
import { noSpend, plusSettled } from '@ao/graphs/spend';
import type { Spent } from '@ao/graphs/spend';
import { addUsage, emptyUsage } from '@ao/runtime';
import type { Payload, Usage } from '@ao/runtime';

export interface Limits {
  tokens?: number;
  tools?: number;
  usd?: number;
  perTool?: Record<string, number>;
}

/** Settled spending in one scope: written once, in `@ao/graphs/spend` (the inspector folds with it too). */
export type { Spent };

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
  /**
   * The run's usage as its log tells it: totals and calls from the settlements (every call that
   * settled, whatever became of its node), an LLM call's input/output split from its answer. The
   * one figure the run's record, `run.finished` and `/usage` all show.
   */
  usage: Usage;
}

/** What a call used, as its settlement says. */
export interface Actual {
  tokens: number;
  usd: number;
  tool?: string;
}

/** What an effect asks the budget: the `budget.request` payload (its schema is the one source). */
export type BudgetRequest = Payload<'budget.request'>;

export type LimitName = 'tokens' | 'tools' | 'usd' | 'perTool' | 'wallClockSec';

/** What a decision reports of the scope whose limit decided it. */
export interface Standing {
  limit: LimitName;
  /** Whose limit: the run's, or a node's sub-budget. */
  scope: 'run' | `node:${string}`;
  tool?: string;
  /** The limit. */
  value: number;
  /** Settled usage in that scope (calls that finished). */
  used: number;
  /** Held by the reservations of calls in flight in that scope. */
  reserved: number;
  /** How many calls in flight hold some of it. */
  inFlight: number;
  /** The least the call needed to fit: its whole prompt plus the useful minimum of output (an LLM call), one call (a tool). */
  asked: number;
}

export type Decision =
  | { grant: true; reservation: Reservation; maxTokens?: number }
  /**
   * It does not fit while other calls in flight hold part of the limit: asked again as they settle
   * (they usually use far less than they reserved), refused only if it still does not fit once
   * none holds any.
   */
  | ({ grant: false; wait: true } & Standing)
  | ({
      grant: false;
      wait?: undefined;
      /** Whether the run must stop (a per-tool cap only refuses that tool). */
      stop: boolean;
      /** A soft limit: the request is held while a person decides (grant, deny, fork). */
      soft?: true;
    } & Standing);

/** Price per million tokens, by model. */
export type PriceTable = Record<string, { input: number; output: number }>;

/**
 * The useful minimum of output: a call that no longer fits with the `maxTokens` it asked for (and
 * nothing else in flight to wait for) is granted a smaller `maxTokens`, for tokens and for usd
 * alike, as long as at least this much output (or all it asked for, if less) fits; else refused.
 */
export const MIN_OUTPUT_TOKENS = 16;

export function newLedger(limits: Limits & { soft?: SoftLimits }, nodeLimits: Record<string, Limits> = {}): Ledger {
  const { soft, ...hard } = limits;
  return { limits: hard, nodeLimits, used: noSpend(), byNode: {}, reserved: {}, usage: emptyUsage(), ...(soft ? { soft: { ...soft } } : {}) };
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

/** What calls in flight hold, for the run or one node: the sums, and how many calls hold each. */
interface Held {
  tokens: number;
  usd: number;
  tools: number;
  perTool: Record<string, number>;
  /** Calls holding some tokens, some usd. */
  tokenCalls: number;
  usdCalls: number;
}

function heldBy(l: Ledger, node?: string): Held {
  const h: Held = { tokens: 0, usd: 0, tools: 0, perTool: {}, tokenCalls: 0, usdCalls: 0 };
  for (const r of Object.values(l.reserved)) {
    if (node && r.node !== node) continue;
    h.tokens += r.tokens;
    h.usd += r.usd;
    if (r.tokens > 0) h.tokenCalls += 1;
    if (r.usd > 0) h.usdCalls += 1;
    if (r.tool) {
      h.tools += 1;
      h.perTool[r.tool] = (h.perTool[r.tool] ?? 0) + 1;
    }
  }
  return h;
}

/** A soft limit that still means something: below its hard limit (once raised to it, the hard limit decides). */
function softOf(l: Ledger, k: 'tokens' | 'tools' | 'usd'): number | undefined {
  const soft = l.soft?.[k];
  const hard = l.limits[k];
  return soft !== undefined && (hard === undefined || soft < hard) ? soft : undefined;
}

/**
 * The most output tokens whose reservation fits in `left` usd with this prompt (Infinity when the
 * price table makes output free): the inverse of `reservePrice`, which takes the highest price of
 * the table for a model it does not know, so every row of that set must fit.
 */
export function outputFitting(prices: PriceTable, model: string, promptTokens: number, left: number): number {
  const rows = prices[model] ? [prices[model]] : Object.values(prices);
  let best = Infinity;
  for (const p of rows) {
    const forOutput = left * 1_000_000 - promptTokens * p.input;
    if (forOutput < 0) return -1;
    if (p.output > 0) best = Math.min(best, Math.floor(forOutput / p.output));
  }
  // Rounding: step down until the price really fits.
  while (best > 0 && Number.isFinite(best) && reservePrice(prices, model, promptTokens, best) > left) best -= 1;
  return best;
}

interface Scope {
  scope: 'run' | `node:${string}`;
  limits: Limits;
  spent: Spent;
  held: Held;
}

type Verdict = { fits: true; maxTokens?: number } | { fits: false; wait: boolean; standing: Standing };

/**
 * Decide a request. Every limit of the run and of the request's node is checked against what is
 * settled plus what calls in flight hold. A request that does not fit while calls in flight hold
 * part of the limit it fails waits (`wait`: decided again when they settle); one that does not fit
 * with none in flight is refused, or (an LLM call) granted a smaller `maxTokens` when at least the
 * useful minimum of output fits. A soft limit holds the request for a person instead.
 */
export function decide(l: Ledger, req: BudgetRequest, prices: PriceTable = {}): Decision {
  const scopes: Scope[] = [{ scope: 'run', limits: l.limits, spent: l.used, held: heldBy(l) }];
  const nl = l.nodeLimits[req.node];
  if (nl) scopes.push({ scope: `node:${req.node}`, limits: nl, spent: l.byNode[req.node] ?? noSpend(), held: heldBy(l, req.node) });
  const verdicts = req.kind === 'tool' ? scopes.map((sc) => toolVerdict(sc, req.tool)) : tokenVerdicts(scopes, req, prices);
  const refusal = verdicts.find((v) => !v.fits && !v.wait);
  if (refusal && !refusal.fits) return { grant: false, ...refusal.standing, stop: refusal.standing.limit !== 'perTool' };
  const waiting = verdicts.find((v) => !v.fits);
  if (waiting && !waiting.fits) return { grant: false, wait: true, ...waiting.standing };
  let maxTokens = req.kind === 'llm' ? req.maxTokens : 0;
  for (const v of verdicts) if (v.fits && v.maxTokens !== undefined) maxTokens = Math.min(maxTokens, v.maxTokens);

  // Soft limits of the run: the whole call must fit (a person decides rather than an answer cut short).
  const run = scopes[0]!;
  const softStanding = (limit: 'tokens' | 'tools' | 'usd', value: number, asked: number): Decision => {
    const held = limit === 'tokens' ? run.held.tokens : limit === 'usd' ? run.held.usd : run.held.tools;
    const inFlight = limit === 'tokens' ? run.held.tokenCalls : limit === 'usd' ? run.held.usdCalls : run.held.tools;
    const standing: Standing = { limit, scope: 'run', value, used: run.spent[limit], reserved: held, inFlight, asked };
    return inFlight > 0 ? { grant: false, wait: true, ...standing } : { grant: false, ...standing, stop: false, soft: true };
  };
  if (req.kind === 'tool') {
    const softTools = softOf(l, 'tools');
    if (softTools !== undefined && run.spent.tools + run.held.tools + 1 > softTools) return softStanding('tools', softTools, 1);
    return { grant: true, reservation: { node: req.node, actor: req.actor, tokens: 0, usd: 0, tool: req.tool } };
  }
  const usd = reservePrice(prices, req.model, req.promptTokens, maxTokens);
  const softTokens = softOf(l, 'tokens');
  if (softTokens !== undefined && run.spent.tokens + run.held.tokens + req.promptTokens + maxTokens > softTokens) {
    return softStanding('tokens', softTokens, req.promptTokens + maxTokens);
  }
  const softUsd = softOf(l, 'usd');
  if (softUsd !== undefined && run.spent.usd + run.held.usd + usd > softUsd) return softStanding('usd', softUsd, usd);
  const reservation: Reservation = { node: req.node, actor: req.actor, tokens: req.promptTokens + maxTokens, usd };
  return { grant: true, reservation, ...(maxTokens < req.maxTokens ? { maxTokens } : {}) };
}

function toolVerdict({ scope, limits, spent, held }: Scope, tool: string): Verdict {
  const cap = limits.perTool?.[tool];
  const mine = (spent.perTool[tool] ?? 0) + (held.perTool[tool] ?? 0);
  if (cap !== undefined && mine + 1 > cap) {
    const inFlight = held.perTool[tool] ?? 0;
    return {
      fits: false,
      wait: inFlight > 0,
      standing: { limit: 'perTool', scope, tool, value: cap, used: spent.perTool[tool] ?? 0, reserved: inFlight, inFlight, asked: 1 },
    };
  }
  if (limits.tools !== undefined && spent.tools + held.tools + 1 > limits.tools) {
    return {
      fits: false,
      wait: held.tools > 0,
      standing: { limit: 'tools', scope, value: limits.tools, used: spent.tools, reserved: held.tools, inFlight: held.tools, asked: 1 },
    };
  }
  return { fits: true };
}

/** An LLM call against the tokens and then the usd limits of each scope (usd priced at the output tokens can still have). */
function tokenVerdicts(scopes: Scope[], req: Extract<BudgetRequest, { kind: 'llm' }>, prices: PriceTable): Verdict[] {
  const least = Math.min(MIN_OUTPUT_TOKENS, req.maxTokens);
  const out: Verdict[] = [];
  let maxTokens = req.maxTokens;
  for (const { scope, limits, spent, held } of scopes) {
    if (limits.tokens === undefined) continue;
    const left = limits.tokens - spent.tokens - held.tokens;
    if (left >= req.promptTokens + req.maxTokens) continue;
    const standing: Standing = {
      limit: 'tokens',
      scope,
      value: limits.tokens,
      used: spent.tokens,
      reserved: held.tokens,
      inFlight: held.tokenCalls,
      asked: req.promptTokens + least,
    };
    if (held.tokenCalls > 0) out.push({ fits: false, wait: true, standing });
    else if (left - req.promptTokens >= least) {
      maxTokens = Math.min(maxTokens, left - req.promptTokens);
      out.push({ fits: true, maxTokens });
    } else out.push({ fits: false, wait: false, standing });
  }
  for (const { scope, limits, spent, held } of scopes) {
    if (limits.usd === undefined) continue;
    const left = limits.usd - spent.usd - held.usd;
    if (reservePrice(prices, req.model, req.promptTokens, maxTokens) <= left) continue;
    const standing: Standing = {
      limit: 'usd',
      scope,
      value: limits.usd,
      used: spent.usd,
      reserved: held.usd,
      inFlight: held.usdCalls,
      asked: reservePrice(prices, req.model, req.promptTokens, least),
    };
    if (held.usdCalls > 0) {
      out.push({ fits: false, wait: true, standing });
      continue;
    }
    const fitting = outputFitting(prices, req.model, req.promptTokens, left);
    if (fitting >= least) {
      maxTokens = Math.min(maxTokens, fitting);
      out.push({ fits: true, maxTokens });
    } else out.push({ fits: false, wait: false, standing });
  }
  return out;
}

/** Record a grant's reservation (the budget actor's state after a grant). */
export function reserve(l: Ledger, key: string, r: Reservation): Ledger {
  return { ...l, reserved: { ...l.reserved, [key]: r } };
}

/** A call finished: its actual usage replaces its reservation. */
export function settle(l: Ledger, key: string, actual: Actual): Ledger {
  const r = l.reserved[key];
  if (!r) return l; // settled already (a redelivery), or never granted
  const { [key]: _done, ...reserved } = l.reserved;
  // The arithmetic the inspector's fold uses too (`@ao/graphs/spend`): written once.
  const add = (s: Spent): Spent => plusSettled(s, r, actual);
  // The split of an LLM call's tokens into input and output comes from its answer (see `answered`).
  const usage = addUsage(l.usage, { totalTokens: actual.tokens, ...(r.tool ? { toolCalls: 1, perTool: { [r.tool]: 1 } } : { llmCalls: 1 }) });
  return { ...l, reserved, used: add(l.used), byNode: { ...l.byNode, [r.node]: add(l.byNode[r.node] ?? noSpend()) }, usage };
}

/** An LLM answer was journaled: its input and output tokens (its settlement, in the same append, counts the total). */
export function answered(l: Ledger, u: { inputTokens: number; outputTokens: number }): Ledger {
  return { ...l, usage: addUsage(l.usage, { inputTokens: u.inputTokens, outputTokens: u.outputTokens }) };
}

/** A call that never ran (aborted, failed before the provider charged): free its reservation. */
export function release(l: Ledger, key: string): Ledger {
  if (!l.reserved[key]) return l;
  const { [key]: _gone, ...reserved } = l.reserved;
  return { ...l, reserved };
}

/** A figure of a limit as people read it: counts with separators, dollars to the cent's hundredth. */
function figure(limit: string, n: number): string {
  if (limit === 'usd') return `$${(Math.round(n * 10_000) / 10_000).toLocaleString('en-US', { maximumFractionDigits: 4 })}`;
  if (limit === 'wallClockSec') return `${(Math.round(n * 1000) / 1000).toLocaleString('en-US')} s`;
  return Math.round(n).toLocaleString('en-US');
}

/**
 * What a budget refusal says, used and reserved apart: "the run reached its tokens limit: 1,504
 * used, 1,496 reserved by 2 calls in flight, limit 3,000; a call needed at least 116".
 */
export function budgetMessage(p: {
  limit: string;
  scope: string;
  tool?: string;
  value: number;
  used: number;
  reserved?: number;
  inFlight?: number;
  asked?: number;
}): string {
  const who = p.scope === 'run' ? 'the run' : p.scope;
  const what = p.limit === 'perTool' ? `${p.tool ?? 'tool'} calls` : p.limit;
  const held =
    p.reserved !== undefined && p.inFlight
      ? `${figure(p.limit, p.reserved)} reserved by ${p.inFlight} call${p.inFlight === 1 ? '' : 's'} in flight`
      : 'none in flight';
  const parts = p.limit === 'wallClockSec' ? `${figure(p.limit, p.used)} elapsed` : `${figure(p.limit, p.used)} used, ${held}`;
  const asked = p.asked ? `; a call needed at least ${figure(p.limit, p.asked)}` : '';
  return `${who} reached its ${what} limit: ${parts}, limit ${figure(p.limit, p.value)}${asked}`;
}
