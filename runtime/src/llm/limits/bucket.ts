/**
 * The arithmetic of a profile's shared limits, pure so that the in-process table and the Postgres
 * table run the very same code (and one test covers both).
 *
 * A bucket per dimension (requests, input tokens, output tokens) refills continuously at its
 * per-minute rate up to its capacity (the burst). A call is never refused for want of tokens now:
 * it takes them at once and the bucket may go into debt; the call then starts when the debt is
 * repaid (`waitMs`). That is the generic cell rate algorithm written with levels: one atomic
 * update per call and no polling, and calls start in the order they reserved. A call whose wait
 * would pass the bound takes nothing. Concurrency is a set of holders with an expiry (a node that
 * dies without releasing frees its slots when they expire); a full set is waited on by polling.
 */

/** One dimension's rate: `capacity` tokens, refilled at `perMs` tokens a millisecond. */
export interface Rate {
  readonly capacity: number;
  readonly perMs: number;
}

/** The limits of one bucket row (a profile's, or one tenant's share of it). */
export interface BucketLimits {
  readonly requests?: Rate;
  readonly inputTokens?: Rate;
  readonly outputTokens?: Rate;
  readonly concurrent?: number;
}

export type Dimension = 'requests' | 'inputTokens' | 'outputTokens';
export type LimitName = Dimension | 'concurrent';
export const DIMENSIONS: readonly Dimension[] = ['requests', 'inputTokens', 'outputTokens'];

/** What one call asks of each dimension. */
export type Ask = Readonly<Record<Dimension, number>>;

/**
 * A bucket row as stored (JSON). `levels[d]` is the level at time `at` (epoch ms, possibly in the
 * future: a reservation charged at the time its call starts); `held` maps a call's id to when its
 * concurrency slot expires.
 */
export interface BucketState {
  at: number;
  levels: Partial<Record<Dimension, number>>;
  held: Record<string, number>;
}

/** The level of one dimension at `now`: linear in time, capped at the capacity. */
export function levelAt(state: BucketState | undefined, d: Dimension, rate: Rate, now: number): number {
  const l = state?.levels[d];
  if (l === undefined || state === undefined) return rate.capacity;
  return Math.min(rate.capacity, l + rate.perMs * (now - state.at));
}

/** The wait before `ask` fits the dimension: 0 when it fits now. An ask above the capacity fits a full bucket. */
function waitFor(level: number, ask: number, rate: Rate): number {
  const need = Math.min(ask, rate.capacity);
  // Whole milliseconds (timers have no finer grain), without rounding float noise up a whole one.
  return level >= need ? 0 : Math.ceil((need - level) / rate.perMs - 1e-6);
}

export type Reservation =
  | { readonly ok: true; readonly waitMs: number; readonly limit?: LimitName; readonly state: BucketState }
  | { readonly ok: false; readonly waitMs: number; readonly limit: LimitName };

/**
 * Reserve one call's rate tokens: the wait until every dimension has them (the longest decides,
 * and names the limit), and the state with them taken as of that time. Refused, taking nothing,
 * when the wait passes `maxWaitMs`.
 */
export function reserve(state: BucketState | undefined, limits: BucketLimits, ask: Ask, now: number, maxWaitMs: number): Reservation {
  let waitMs = 0;
  let limit: Dimension | undefined;
  for (const d of DIMENSIONS) {
    const rate = limits[d];
    if (!rate || ask[d] <= 0) continue;
    const w = waitFor(levelAt(state, d, rate, now), ask[d], rate);
    if (w > waitMs) {
      waitMs = w;
      limit = d;
    }
  }
  // Calls start in the order they reserved: never before the last reservation's start.
  const start = Math.max(now + waitMs, state?.at ?? now);
  waitMs = start - now;
  if (waitMs > maxWaitMs) return { ok: false, waitMs, limit: limit ?? 'requests' };
  const levels: BucketState['levels'] = {};
  for (const d of DIMENSIONS) {
    const rate = limits[d];
    if (rate) levels[d] = levelAt(state, d, rate, start) - ask[d];
  }
  return { ok: true, waitMs, ...(limit ? { limit } : {}), state: { at: start, levels, held: live(state, now) } };
}

/** Hand back (positive) or charge (negative) tokens after a call: its reservation against what it used. */
export function adjust(state: BucketState | undefined, limits: BucketLimits, delta: Partial<Ask>, now: number): BucketState | undefined {
  if (!state) return state;
  const at = Math.max(now, state.at);
  const levels: BucketState['levels'] = {};
  for (const d of DIMENSIONS) {
    const rate = limits[d];
    if (!rate) continue;
    levels[d] = Math.min(rate.capacity, levelAt(state, d, rate, at) + (delta[d] ?? 0));
  }
  return { at, levels, held: live(state, now) };
}

/** Take a concurrency slot for `id` until `expiresAt`, or say it is full. */
export function hold(state: BucketState | undefined, limits: BucketLimits, id: string, now: number, expiresAt: number): { ok: boolean; state: BucketState } {
  const held = live(state, now);
  const base: BucketState = { at: state?.at ?? now, levels: state?.levels ?? {}, held };
  if (limits.concurrent === undefined || id in held)
    return { ok: true, state: limits.concurrent === undefined ? base : { ...base, held: { ...held, [id]: expiresAt } } };
  if (Object.keys(held).length >= limits.concurrent) return { ok: false, state: base };
  return { ok: true, state: { ...base, held: { ...held, [id]: expiresAt } } };
}

/** Free `id`'s concurrency slot. */
export function unhold(state: BucketState | undefined, id: string, now: number): BucketState | undefined {
  if (!state) return state;
  const held = live(state, now);
  delete held[id];
  return { ...state, held };
}

/** The holders whose slot has not expired. */
function live(state: BucketState | undefined, now: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [id, until] of Object.entries(state?.held ?? {})) if (until > now) out[id] = until;
  return out;
}
