import { isEnvelopeOf } from '@ao/runtime';
import type { Behaviour, Envelope } from '@ao/runtime';
import { isEnvelope } from '../services.js';
import type { ActorMessage, RunServices } from '../services.js';
import { take } from './budget-desk.js';
import type { BudgetDesk } from './budget-desk.js';
import { answered, release, reserve, settle } from './ledger.js';
import type { Ledger, PriceTable } from './ledger.js';

/** The budget actor's path in every run. */
export const BUDGET_NAME = 'budget';

/** The envelopes a ledger is folded from: the budget's, and LLM answers (their input/output split). */
export const isLedgerEvent = (type: string): boolean => type.startsWith('budget.') || type === 'llm.response';

/**
 * Rebuild a ledger from the budget envelopes of a run's log, in order: grants reserve, settlements
 * and releases spend or free, LLM answers split the usage into input and output. This is how a
 * budget actor restored after a crash knows what was already granted and spent (its decisions are
 * in the log; nothing else is).
 */
export function foldLedger(start: Ledger, events: Iterable<Envelope>): Ledger {
  let l = start;
  for (const e of events) {
    // Checked where they entered (the journal, a store read): a payload of another shape is not folded.
    if (isEnvelopeOf(e, 'budget.granted')) l = reserve(l, e.payload.key, e.payload.reservation);
    else if (isEnvelopeOf(e, 'budget.settle')) l = settle(l, e.payload.key, e.payload);
    else if (isEnvelopeOf(e, 'budget.release')) l = release(l, e.payload.key);
    else if (isEnvelopeOf(e, 'budget.raised')) l = { ...l, soft: e.payload.soft };
    else if (isEnvelopeOf(e, 'llm.response')) l = answered(l, e.payload.usage);
  }
  return l;
}

/**
 * The budget actor of a run: a child of the run supervisor that decides every `budget.request`
 * in its mailbox one at a time (so concurrent branches cannot race past a limit), answers with
 * `budget.granted` or `budget.refused`, and applies settlements and releases. A request that does
 * not fit while other calls in flight hold part of its limit is answered `budget.waiting` and
 * queued: each settlement or release decides the queue again, in arrival order, so a call is
 * refused only if it cannot fit once nothing else is in flight. The queue never blocks the
 * mailbox: the settlements it waits for are taken as they come. A refusal the run cannot go on
 * without is also sent to the supervisor as `budget.exceeded`, which stops the run.
 */
export function fromBudget(s: RunServices, initial: Ledger, prices: PriceTable): Behaviour<ActorMessage, Ledger> {
  // Its decisions are budget-desk.ts (the requests it holds and queues live in the desk).
  const desk: BudgetDesk = { s, prices, held: new Map(), queued: new Map(), stopped: false };
  return {
    initialState: initial,
    async receive(ledger, msg, ctx) {
      // A request that arrives as the run ends (a branch stopping late) has no one to answer.
      if (!isEnvelope(msg) || s.journal.ended) return ledger;
      try {
        return await take(desk, ledger, msg, ctx);
      } catch (e) {
        if (s.journal.ended) return ledger;
        throw e;
      }
    },
  };
}
