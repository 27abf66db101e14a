import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isEnvelopeType, payloadChecks, requirePayload } from '@ao/runtime';
import type { Envelope, Store } from '@ao/runtime';
import type { Engine } from '../src/mod.js';
import { allEvents, makeEngine, until } from './harness.js';

/**
 * The envelope union (runtime/src/envelope/payloads.ts) against what the code writes: every
 * envelope of the example graphs' runs (and of a recorded replay, and of the old log format's
 * fixture) is of a known type and fits its schema. A new envelope type emitted without a schema,
 * or a payload that drifted from its schema, fails here.
 */
function misfits(events: readonly Envelope[]): string[] {
  const out: string[] = [];
  for (const e of events) {
    if (!isEnvelopeType(e.type)) out.push(`seq ${e.seq}: ${e.type} has no schema`);
    else {
      try {
        requirePayload(e, e.type);
      } catch (err) {
        out.push(`seq ${e.seq}: ${(err as Error).message}`);
      }
    }
  }
  return out;
}

describe('the envelope union covers what the code writes', () => {
  let engine: Engine;
  let store: Store;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ engine, store, close } = await makeEngine('pglite'));
  });
  afterAll(async () => {
    await close?.();
  });

  it("every envelope of the example graphs' runs, a person's approval and a recorded replay is of a known type and fits its schema", async () => {
    const starts = [
      { graph: 'draft-critique', input: { brief: 'A note on typed envelopes.' } },
      { graph: 'research-swarm', input: { topic: 'envelopes' } },
      { graph: 'triage', input: { intent: 'refund', charge: 'ch_1' } },
      { graph: 'triage', input: { intent: 'question' } },
    ];
    const runs = await Promise.all(starts.map((s) => engine.startRun(s)));
    const approval = await engine.startRun({ graph: 'triage-with-approval', input: { intent: 'refund', charge: 'ch_2' } });
    await until(
      async () => (await store.getRun(approval.id))?.status === 'waiting' && engine.activeRuns().every((r) => r !== approval.id),
      'the approval run asleep',
      30_000,
    );
    await engine.signal(approval.id, { node: 'refund', payload: { approved: true, amount: 5, comment: 'ok' } });
    const approved = await until(
      async () => {
        const r = await store.getRun(approval.id);
        return r && r.status === 'succeeded' ? r : undefined;
      },
      'the approved run to finish',
      60_000,
    );
    const done = [...(await Promise.all(runs.map((r) => engine.waitForRun(r.id, 60_000)))), approved];
    expect(done.map((r) => r.status)).toEqual(['succeeded', 'succeeded', 'succeeded', 'succeeded', 'succeeded']);
    const replay = await engine.waitForRun((await engine.replay(runs[1]!.id, { fromStep: 1, mode: 'recorded' })).id, 60_000);
    expect(replay.status).toBe('succeeded');

    const types = new Set<string>();
    for (const r of [...done, replay]) {
      const events = await allEvents(store, r.id);
      expect(misfits(events), `run ${r.graph} ${r.id}`).toEqual([]);
      for (const e of events) types.add(e.type);
    }
    // The runs reached the types the union is for, not only the start and end of a run.
    for (const t of [
      'run.started',
      'run.finished',
      'run.waiting',
      'run.resumed',
      'run.replayed',
      'wait.opened',
      'wait.resolved',
      'node.start',
      'node.completed',
      'node.skipped',
      'branch.start',
      'branch.completed',
      'llm.request',
      'llm.response',
      'tool.call',
      'tool.result',
      'budget.request',
      'budget.granted',
      'budget.settle',
    ]) {
      expect(types, t).toContain(t);
    }
  }, 120_000);

  it('checks each payload once in a run: the journal checks it as it is appended, the bus, the actors and the folds read that check', async () => {
    const before = payloadChecks();
    const run = await engine.startRun({ graph: 'research-swarm', input: { topic: 'counting' } });
    expect((await engine.waitForRun(run.id, 60_000)).status).toBe('succeeded');
    const checks = payloadChecks() - before;
    const events = await allEvents(store, run.id);
    // At most one check per envelope written (a run's log read back is checked only when read as a type).
    expect(checks).toBeGreaterThan(0);
    expect(checks).toBeLessThanOrEqual(events.length);
  }, 60_000);

  it("every envelope of the old log format's fixture (runs journaled at commit 46df0c3) is of a known type and fits its schema", () => {
    const fixture = JSON.parse(readFileSync(new URL('./fixtures/log-format-v0.json', import.meta.url), 'utf8')) as {
      finished: { events: Envelope[] };
      interrupted: { events: Envelope[] };
    };
    expect(misfits(fixture.finished.events)).toEqual([]);
    expect(misfits(fixture.interrupted.events)).toEqual([]);
  });
});
