import { isEnvelopeOf, log, messagePayload } from '@ao/runtime';
import type { ActorContext, Behaviour, Envelope } from '@ao/runtime';
import { parentOf } from '../pipeline/pipeline.js';
import { draft, isEnvelope } from '../services.js';
import type { ActorMessage, RunServices } from '../services.js';
import { answered, decide, release, reserve, settle } from './ledger.js';
import type { BudgetRequest, Decision, Ledger, PriceTable, Standing } from './ledger.js';

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
  let stopped = false;
  /** Requests held at a soft limit until a person decides, by key, in arrival order. */
  const held = new Map<string, Envelope>();
  /** Requests waiting for calls in flight to settle, by key, in arrival order. */
  const queued = new Map<string, Envelope>();
  return {
    initialState: initial,
    async receive(ledger, msg, ctx) {
      // A request that arrives as the run ends (a branch stopping late) has no one to answer.
      if (!isEnvelope(msg) || s.journal.ended) return ledger;
      try {
        return await take(ledger, msg, ctx);
      } catch (e) {
        if (s.journal.ended) return ledger;
        throw e;
      }
    },
  };

  async function take(ledger: Ledger, msg: Envelope, ctx: ActorContext<ActorMessage>): Promise<Ledger> {
    switch (msg.type) {
      case 'budget.request': {
        const req = messagePayload(msg, 'budget.request');
        // A request decided before (redelivered after a crash) keeps its decision.
        if (s.journal.recorded(`${req.key}/grant`)) return ledger;
        // The run is stopping over its budget: nothing more is granted (its actors are being stopped).
        if (stopped) return ledger;
        // Behind requests that wait already: first come, first served (it waits with the first).
        const first = queued.values().next().value;
        if (first && !queued.has(req.key)) {
          const own = decide(ledger, req, prices);
          const head = decide(ledger, messagePayload(first, 'budget.request'), prices);
          const standing = !own.grant && own.wait ? own : !head.grant && head.wait ? head : undefined;
          if (standing) {
            queued.set(req.key, msg);
            await waiting(req, msg, standing, ctx);
            return ledger;
          }
        }
        return decideOn(ledger, msg, ctx);
      }
      case 'budget.settle': {
        const p = messagePayload(msg, 'budget.settle');
        return drain(settle(ledger, p.key, p), ctx);
      }
      case 'budget.release': {
        const key = messagePayload(msg, 'budget.release').key;
        // Its asker gave up while it waited: nothing to decide for it any more.
        queued.delete(key);
        return drain(release(ledger, key), ctx);
      }
      case 'budget.raised': {
        // A person granted more (the supervisor committed the raise with the answer): decide what was held.
        let next: Ledger = { ...ledger, soft: messagePayload(msg, 'budget.raised').soft };
        for (const h of [...held.values()]) next = await decideOn(next, h, ctx);
        return drain(next, ctx);
      }
      default:
        return ledger;
    }
  }

  /** Decide the queue again, in order, up to the first request that must still wait. */
  async function drain(ledger: Ledger, ctx: ActorContext<ActorMessage>): Promise<Ledger> {
    if (stopped) {
      queued.clear();
      return ledger;
    }
    let next = ledger;
    for (const [key, msg] of [...queued]) {
      // One of them stopped the run: the rest are not decided.
      if (stopped) {
        queued.clear();
        break;
      }
      const d = decide(next, messagePayload(msg, 'budget.request'), prices);
      if (!d.grant && d.wait) break;
      queued.delete(key);
      next = await decideOn(next, msg, ctx, d);
    }
    return next;
  }

  function replyTo(msg: Envelope, ctx: ActorContext<ActorMessage>) {
    return (type: string, payload: unknown, key: string, to = msg.from) => draft(s, { from: ctx.path, to, type, payload, causationId: msg.id, key });
  }

  /** Tell the asker it waits, and for what. */
  async function waiting(req: BudgetRequest, msg: Envelope, d: Standing, ctx: ActorContext<ActorMessage>): Promise<void> {
    const { limit, scope, value, used, reserved, inFlight, asked, tool } = d;
    await s.journal.append(
      [replyTo(msg, ctx)('budget.waiting', { key: req.key, node: req.node, actor: req.actor, limit, scope, ...(tool ? { tool } : {}), value, used, reserved, inFlight, asked }, `${req.key}/wait`)],
      { stage: true },
    );
  }

  async function decideOn(ledger: Ledger, msg: Envelope, ctx: ActorContext<ActorMessage>, decided?: Decision): Promise<Ledger> {
    const req = messagePayload(msg, 'budget.request');
    const d = decided ?? decide(ledger, req, prices);
    const reply = replyTo(msg, ctx);
    if (d.grant) {
      held.delete(req.key);
      const next = reserve(ledger, req.key, d.reservation);
      // Staged: it commits with the call it approves (or, for a node task elsewhere, at once).
      // Not awaited: the next request is decided against the ledger that holds this reservation
      // already, so for a node task elsewhere the grants of requests that come together ride in
      // one commit instead of one commit each. Appends keep their order; if this one fails, the
      // journal is closed and the run is resumed from its log, where the grant is decided again.
      s.journal
        .append([reply('budget.granted', { key: req.key, reservation: d.reservation, ...(d.maxTokens ? { maxTokens: d.maxTokens } : {}) }, `${req.key}/grant`)], { stage: true })
        .catch((e: unknown) => {
          if (!s.journal.ended) log.error(`could not journal the grant for ${req.key}`, { component: 'budget', runId: s.runId, err: e });
        });
      return next;
    }
    if (d.wait) {
      held.delete(req.key);
      queued.set(req.key, msg);
      await waiting(req, msg, d, ctx);
      return ledger;
    }
    if (d.soft) {
      // Held: the asker waits (no timeout) and the supervisor asks a person.
      held.set(req.key, msg);
      const limit = d.limit as 'tokens' | 'tools' | 'usd';
      await s.journal.append(
        [
          reply('budget.held', { key: req.key, limit, value: d.value, used: d.used + d.reserved }, `${req.key}/held`),
          reply('budget.escalated', { key: req.key, node: req.node, actor: req.actor, limit, value: d.value, used: d.used + d.reserved }, `budget.escalated/${limit}/${d.value}`, parentOf(ctx.path)),
        ],
        { stage: true },
      );
      return ledger;
    }
    held.delete(req.key);
    const { grant: _g, soft: _s, wait: _w, ...refusal } = d;
    const drafts = [reply('budget.refused', { key: req.key, ...refusal }, `${req.key}/grant`)];
    if (d.stop && !stopped) {
      stopped = true;
      const { limit, scope, value, used, reserved, inFlight, asked } = d;
      drafts.push(reply('budget.exceeded', { limit, scope, value, used, reserved, inFlight, asked, actor: req.actor }, 'budget.exceeded', parentOf(ctx.path)));
    }
    await s.journal.append(drafts, { stage: true });
    return ledger;
  }
}
