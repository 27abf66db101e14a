import { AoError } from '@ao/graphs';
import { log, messagePayload, typed } from '@ao/runtime';
import type { ActorContext, Envelope, EnvelopeType, Payload } from '@ao/runtime';
import { parentOf } from '../pipeline/pipeline.js';
import { draft } from '../services.js';
import type { ActorMessage, RunServices } from '../services.js';
import { decide, release, reserve, settle } from './ledger.js';
import type { BudgetRequest, Decision, Ledger, PriceTable, Standing } from './ledger.js';

/**
 * What one budget actor holds besides its ledger (the state `fromBudget` closes over):
 * the run's services, its prices, the requests held at a soft limit and those waiting for calls in
 * flight, and whether it has stopped the run.
 */
export interface BudgetDesk {
  readonly s: RunServices;
  readonly prices: PriceTable;
  /** Requests held at a soft limit until a person decides, by key, in arrival order. */
  readonly held: Map<string, Envelope>;
  /** Requests waiting for calls in flight to settle, by key, in arrival order. */
  readonly queued: Map<string, Envelope>;
  stopped: boolean;
}

/** Take one envelope of the budget's mailbox: decide a request, apply a settlement, a release or a raise. */
export async function take(desk: BudgetDesk, ledger: Ledger, msg: Envelope, ctx: ActorContext<ActorMessage>): Promise<Ledger> {
  switch (msg.type) {
    case 'budget.request': {
      const req = messagePayload(msg, 'budget.request');
      // A request decided before (redelivered after a crash) keeps its decision.
      if (desk.s.journal.recorded(`${req.key}/grant`)) return ledger;
      // The run is stopping over its budget: nothing more is granted (its actors are being stopped).
      if (desk.stopped) return ledger;
      // Behind requests that wait already: first come, first served (it waits with the first).
      const first = desk.queued.values().next().value;
      if (first && !desk.queued.has(req.key)) {
        const own = decide(ledger, req, desk.prices);
        const head = decide(ledger, messagePayload(first, 'budget.request'), desk.prices);
        const standing = !own.grant && own.wait ? own : !head.grant && head.wait ? head : undefined;
        if (standing) {
          desk.queued.set(req.key, msg);
          await waiting(desk, req, msg, standing, ctx);
          return ledger;
        }
      }
      return decideOn(desk, ledger, msg, ctx);
    }
    case 'budget.settle': {
      const p = messagePayload(msg, 'budget.settle');
      return drain(desk, settle(ledger, p.key, p), ctx);
    }
    case 'budget.release': {
      const key = messagePayload(msg, 'budget.release').key;
      // Its asker gave up while it waited: nothing to decide for it any more.
      desk.queued.delete(key);
      return drain(desk, release(ledger, key), ctx);
    }
    case 'budget.raised': {
      // A person granted more (the supervisor committed the raise with the answer): decide what was held.
      let next: Ledger = { ...ledger, soft: messagePayload(msg, 'budget.raised').soft };
      for (const h of [...desk.held.values()]) next = await decideOn(desk, next, h, ctx);
      return drain(desk, next, ctx);
    }
    default:
      return ledger;
  }
}

/** Decide the queue again, in order, up to the first request that must still wait. */
async function drain(desk: BudgetDesk, ledger: Ledger, ctx: ActorContext<ActorMessage>): Promise<Ledger> {
  if (desk.stopped) {
    desk.queued.clear();
    return ledger;
  }
  let next = ledger;
  for (const [key, msg] of [...desk.queued]) {
    // One of them stopped the run: the rest are not decided.
    if (desk.stopped) {
      desk.queued.clear();
      break;
    }
    const d = decide(next, messagePayload(msg, 'budget.request'), desk.prices);
    if (!d.grant && d.wait) break;
    desk.queued.delete(key);
    next = await decideOn(desk, next, msg, ctx, d);
  }
  return next;
}

function replyTo(desk: BudgetDesk, msg: Envelope, ctx: ActorContext<ActorMessage>) {
  return <T extends EnvelopeType>(type: T, payload: Payload<T>, key: string, to = msg.from) =>
    draft(desk.s, { from: ctx.path, to, causationId: msg.id, key, ...typed(type, payload) });
}

/** Tell the asker it waits, and for what. */
async function waiting(desk: BudgetDesk, req: BudgetRequest, msg: Envelope, d: Standing, ctx: ActorContext<ActorMessage>): Promise<void> {
  const { limit, scope, value, used, reserved, inFlight, asked, tool } = d;
  // A call waits only for reservations of calls in flight to settle: a wall-clock limit holds none.
  if (limit === 'wallClockSec') throw new AoError('AO_INTERNAL', 'a wall-clock limit never makes a call wait');
  await desk.s.journal.append(
    [
      replyTo(desk, msg, ctx)(
        'budget.waiting',
        { key: req.key, node: req.node, actor: req.actor, limit, scope, ...(tool ? { tool } : {}), value, used, reserved, inFlight, asked },
        `${req.key}/wait`,
      ),
    ],
    { stage: true },
  );
}

async function decideOn(desk: BudgetDesk, ledger: Ledger, msg: Envelope, ctx: ActorContext<ActorMessage>, decided?: Decision): Promise<Ledger> {
  const req = messagePayload(msg, 'budget.request');
  const d = decided ?? decide(ledger, req, desk.prices);
  const reply = replyTo(desk, msg, ctx);
  if (d.grant) {
    desk.held.delete(req.key);
    const next = reserve(ledger, req.key, d.reservation);
    // Staged: it commits with the call it approves (or, for a node task elsewhere, at once).
    // Not awaited: the next request is decided against the ledger that holds this reservation
    // already, so for a node task elsewhere the grants of requests that come together ride in
    // one commit instead of one commit each. Appends keep their order; if this one fails, the
    // journal is closed and the run is resumed from its log, where the grant is decided again.
    desk.s.journal
      .append([reply('budget.granted', { key: req.key, reservation: d.reservation, ...(d.maxTokens ? { maxTokens: d.maxTokens } : {}) }, `${req.key}/grant`)], {
        stage: true,
      })
      .catch((e: unknown) => {
        if (!desk.s.journal.ended) log.error(`could not journal the grant for ${req.key}`, { component: 'budget', runId: desk.s.runId, err: e });
      });
    return next;
  }
  if (d.wait) {
    desk.held.delete(req.key);
    desk.queued.set(req.key, msg);
    await waiting(desk, req, msg, d, ctx);
    return ledger;
  }
  if (d.soft) {
    // Held: the asker waits (no timeout) and the supervisor asks a person.
    desk.held.set(req.key, msg);
    const limit = d.limit as 'tokens' | 'tools' | 'usd';
    await desk.s.journal.append(
      [
        reply('budget.held', { key: req.key, limit, value: d.value, used: d.used + d.reserved }, `${req.key}/held`),
        reply(
          'budget.escalated',
          { key: req.key, node: req.node, actor: req.actor, limit, value: d.value, used: d.used + d.reserved },
          `budget.escalated/${limit}/${d.value}`,
          parentOf(ctx.path),
        ),
      ],
      { stage: true },
    );
    return ledger;
  }
  desk.held.delete(req.key);
  const { grant: _g, soft: _s, wait: _w, ...refusal } = d;
  const drafts = [reply('budget.refused', { key: req.key, ...refusal }, `${req.key}/grant`)];
  if (d.stop && !desk.stopped) {
    desk.stopped = true;
    const { limit, scope, value, used, reserved, inFlight, asked } = d;
    drafts.push(reply('budget.exceeded', { limit, scope, value, used, reserved, inFlight, asked, actor: req.actor }, 'budget.exceeded', parentOf(ctx.path)));
  }
  await desk.s.journal.append(drafts, { stage: true });
  return ledger;
}
