import type { ActorContext, Behaviour, Envelope } from '@ao/runtime';
import { parseMessage } from '../messages.js';
import { parentOf } from '../pipeline/pipeline.js';
import type { Payload } from '../messages.js';
import { draft, isEnvelope } from '../services.js';
import type { ActorMessage, RunServices } from '../services.js';
import { decide, release, reserve, settle } from './ledger.js';
import type { BudgetRequest, Ledger, PriceTable } from './ledger.js';

/** The budget actor's path in every run. */
export const BUDGET_NAME = 'budget';

/**
 * Rebuild a ledger from the budget envelopes of a run's log, in order: grants reserve, settlements
 * and releases spend or free. This is how a budget actor restored after a crash knows what was
 * already granted and spent (its decisions are in the log; nothing else is).
 */
export function foldLedger(start: Ledger, events: Iterable<Envelope>): Ledger {
  let l = start;
  for (const e of events) {
    const p = e.payload as { key: string };
    if (e.type === 'budget.granted') l = reserve(l, p.key, (e.payload as Payload<'budget.granted'>).reservation);
    else if (e.type === 'budget.settle') l = settle(l, p.key, e.payload as Payload<'budget.settle'>);
    else if (e.type === 'budget.release') l = release(l, p.key);
    else if (e.type === 'budget.raised') l = { ...l, soft: (e.payload as Payload<'budget.raised'>).soft };
  }
  return l;
}

/**
 * The budget actor of a run: a child of the run supervisor that decides every `budget.request`
 * in its mailbox one at a time (so concurrent branches cannot race past a limit), answers with
 * `budget.granted` or `budget.refused`, and applies settlements and releases. A refusal the run
 * cannot go on without is also sent to the supervisor as `budget.exceeded`, which stops the run.
 */
export function fromBudget(s: RunServices, initial: Ledger, prices: PriceTable): Behaviour<ActorMessage, Ledger> {
  let stopped = false;
  /** Requests held at a soft limit until a person decides, by key, in arrival order. */
  const held = new Map<string, Envelope>();
  return {
    initialState: initial,
    async receive(ledger, msg, ctx) {
      // A request that arrives as the run ends (a branch stopping late) has no one to answer.
      if (!isEnvelope(msg) || s.journal.ended) return ledger;
      try {
        return await decideOn(ledger, msg, ctx);
      } catch (e) {
        if (s.journal.ended) return ledger;
        throw e;
      }
    },
  };

  async function decideOn(ledger: Ledger, msg: Envelope, ctx: ActorContext<ActorMessage>): Promise<Ledger> {
      switch (msg.type) {
        case 'budget.request': {
          const req = parseMessage(msg).payload as BudgetRequest;
          // A request decided before (redelivered after a crash) keeps its decision.
          if (s.journal.recorded(`${req.key}/grant`)) return ledger;
          const d = decide(ledger, req, prices);
          const reply = (type: string, payload: unknown, key: string, to = msg.from) =>
            draft(s, { from: ctx.path, to, type, payload, causationId: msg.id, key });
          if (d.grant) {
            held.delete(req.key);
            const next = reserve(ledger, req.key, d.reservation);
            // Staged: it commits with the call it approves (or, for a node task elsewhere, at once).
            await s.journal.append([reply('budget.granted', { key: req.key, reservation: d.reservation, ...(d.maxTokens ? { maxTokens: d.maxTokens } : {}) }, `${req.key}/grant`)], { stage: true });
            return next;
          }
          if (d.soft) {
            // Held: the asker waits (no timeout) and the supervisor asks a person.
            held.set(req.key, msg);
            const limit = d.limit as 'tokens' | 'tools' | 'usd';
            await s.journal.append(
              [
                reply('budget.held', { key: req.key, limit, value: d.value, used: d.used }, `${req.key}/held`),
                reply('budget.escalated', { key: req.key, node: req.node, actor: req.actor, limit, value: d.value, used: d.used }, `budget.escalated/${limit}/${d.value}`, parentOf(ctx.path)),
              ],
              { stage: true },
            );
            return ledger;
          }
          held.delete(req.key);
          const { grant: _g, soft: _s, ...refusal } = d;
          const drafts = [reply('budget.refused', { key: req.key, ...refusal }, `${req.key}/grant`)];
          if (d.stop && !stopped) {
            stopped = true;
            drafts.push(reply('budget.exceeded', { limit: d.limit, scope: d.scope, value: d.value, used: d.used, actor: req.actor }, 'budget.exceeded', parentOf(ctx.path)));
          }
          await s.journal.append(drafts, { stage: true });
          return ledger;
        }
        case 'budget.settle': {
          const p = parseMessage(msg).payload as Payload<'budget.settle'>;
          return settle(ledger, p.key, p);
        }
        case 'budget.release':
          return release(ledger, (parseMessage(msg).payload as Payload<'budget.release'>).key);
        case 'budget.raised': {
          // A person granted more (the supervisor committed the raise with the answer): decide what was held.
          let next: Ledger = { ...ledger, soft: (parseMessage(msg).payload as Payload<'budget.raised'>).soft };
          for (const h of [...held.values()]) next = await decideOn(next, h, ctx);
          return next;
        }
        default:
          return ledger;
      }
  }
}
