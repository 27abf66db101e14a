import type { Budget, GraphDef } from '@ao/graphs';
import { isEnvelopeOf, payloadField } from '@ao/runtime';
import type { Envelope } from '@ao/runtime';
import { foldLedger } from './budget-actor.js';
import { newLedger } from './ledger.js';
import type { Limits, Spent } from './ledger.js';
import type { WallClockUse } from './wall-clock.js';

export interface UsageReport {
  limits: Budget;
  /** Settled usage. */
  used: Spent;
  /** Granted and not yet settled (calls in flight). */
  reserved: { tokens: number; tools: number; usd: number };
  byNode: Record<string, Spent>;
  byActor: Record<string, { tokens: number; tools: number; usd: number }>;
  byModel: Record<string, { tokens: number; usd: number; calls: number }>;
  refusals: number;
  /** Calls that waited for calls in flight to settle before the budget decided them, and how many wait now. */
  waited: number;
  waiting: number;
  /** The time the wall-clock budget has counted (sleeps for a person left out, as the run supervisor does); absent for a replay. */
  wallClock?: WallClockUse;
}

export function nodeLimitsOf(def: GraphDef<unknown>): Record<string, Limits> {
  const out: Record<string, Limits> = {};
  for (const n of def.nodes) if (n.budget) out[n.id] = n.budget;
  return out;
}

/**
 * The cost ledger of a run rolled up from its budget envelopes: totals, what is reserved by calls
 * in flight, and usage per node, per actor path and per model. Every figure comes from the log,
 * so it is the same on any node, live or after the run.
 */
export function usageReport(def: GraphDef<unknown>, budget: Budget, events: Envelope[]): UsageReport {
  const { wallClockSec: _clock, ...limits } = budget;
  const ledger = foldLedger(newLedger(limits, nodeLimitsOf(def)), events);
  const who = new Map<string, { actor: string; tool?: string }>();
  const byActor: UsageReport['byActor'] = {};
  const byModel: UsageReport['byModel'] = {};
  let refusals = 0;
  const waitedFor = new Set<string>();
  const waitingNow = new Set<string>();
  for (const e of events) {
    const key = payloadField(e.payload, 'key');
    if (e.type === 'budget.waiting' && typeof key === 'string' && key) {
      waitedFor.add(key);
      waitingNow.add(key);
    } else if ((e.type === 'budget.granted' || e.type === 'budget.refused' || e.type === 'budget.release') && typeof key === 'string' && key)
      waitingNow.delete(key);
    if (isEnvelopeOf(e, 'budget.granted')) {
      const p = e.payload;
      who.set(p.key, { actor: p.reservation.actor, ...(p.reservation.tool ? { tool: p.reservation.tool } : {}) });
    } else if (e.type === 'budget.refused') {
      refusals += 1;
    } else if (isEnvelopeOf(e, 'budget.settle')) {
      const p = e.payload;
      const w = who.get(p.key);
      if (!w) continue;
      const a = (byActor[w.actor] ??= { tokens: 0, tools: 0, usd: 0 });
      a.tokens += p.tokens;
      a.usd += p.usd;
      if (w.tool) a.tools += 1;
      if (p.model) {
        const m = (byModel[p.model] ??= { tokens: 0, usd: 0, calls: 0 });
        m.tokens += p.tokens;
        m.usd += p.usd;
        m.calls += 1;
      }
    }
  }
  const reserved = { tokens: 0, tools: 0, usd: 0 };
  for (const r of Object.values(ledger.reserved)) {
    reserved.tokens += r.tokens;
    reserved.usd += r.usd;
    if (r.tool) reserved.tools += 1;
  }
  return { limits: budget, used: ledger.used, reserved, byNode: ledger.byNode, byActor, byModel, refusals, waited: waitedFor.size, waiting: waitingNow.size };
}
