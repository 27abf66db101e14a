import { actorPath, envelopeIdFor } from '@ao/runtime';
import type { ActorContext, Envelope, EnvelopeDraft } from '@ao/runtime';
import { describe, expect, it } from 'vitest';
import type { ActorMessage, RunServices } from '../services.js';
import { fromBudget } from './budget-actor.js';
import { newLedger } from './ledger.js';

const RUN = 'run-budget-actor';
const request = (n: number): Envelope => ({
  id: envelopeIdFor(RUN, `supervisor/a/${n}/budget`),
  runId: RUN,
  seq: n,
  from: actorPath('supervisor', 'a'),
  to: actorPath('supervisor', 'budget'),
  type: 'budget.request',
  payload: { kind: 'tool', key: `supervisor/a/${n}`, node: 'a', actor: 'supervisor/a', tool: 'noop' },
  causationId: null,
  trace: null,
  time: new Date(0).toISOString(),
});

describe('the budget actor', () => {
  it(
    'decides the next request while its last grant is still being committed (a node task elsewhere: grants that come together share a commit)',
    { timeout: 60_000 },
    async () => {
      const appended: EnvelopeDraft[][] = [];
      // A journal whose commits never finish: a grant to an actor on another node commits at once,
      // and before the change the actor waited for that commit before it took its next message.
      const s = {
        runId: RUN,
        trace: null,
        journal: { ended: false, recorded: () => undefined, append: (d: EnvelopeDraft[]) => (appended.push(d), new Promise<Envelope[]>(() => undefined)) },
      } as unknown as RunServices;
      const budget = fromBudget(s, newLedger({ tools: 10 }), {});
      const ctx = { path: actorPath('supervisor', 'budget') } as unknown as ActorContext<ActorMessage>;
      let ledger = budget.initialState!;
      for (const n of [1, 2]) ledger = await budget.receive(ledger, request(n), ctx);
      expect(appended.map((d) => d.map((e) => `${e.type} ${e.dedupeKey}`))).toEqual([
        ['budget.granted supervisor/a/1/grant'],
        ['budget.granted supervisor/a/2/grant'],
      ]);
      // Both reservations are held while their grants commit.
      expect(Object.keys(ledger.reserved).sort()).toEqual(['supervisor/a/1', 'supervisor/a/2']);
    },
  );
});
