import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleGraphs, graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { connectNatsBus, openPgStore } from '@ao/runtime';
import type { Envelope, LlmPort, RunRecord, Store } from '@ao/runtime';
import { createTestDatabase, dropNatsPrefix, natsAvailable, natsPrefix, postgresAvailable, TEST_NATS_URL } from '@ao/runtime/testing';
import { Engine } from '../src/mod.js';
import { diffRuns } from '../src/replay.js';
import { allEvents, countingLlm, makeEngine, toolsWith, until } from './harness.js';

/**
 * Waits replay exactly (issue 19): in a recorded replay, the answers a run received, the times it
 * read about its waits (opened, times out, how long it slept) and the order of both are served
 * from the original, so a recorded replay from any step of a run that waited for a person
 * reproduces its log, asks nobody and never sleeps.
 */

const ask = graph('replay-ask')
  .node('draft', { agent: 'pipeline', instructions: 'Draft the reply.', interrupt: { prompt: 'Ask when the customer name is missing.' } })
  .node('send', { agent: 'pipeline', instructions: 'Send it.' })
  .edge('draft', 'send') as GraphBuilder<unknown>;

const timed = graph('replay-timeout')
  .node('gate', { agent: 'pipeline', approval: { prompt: 'Go?', timeoutSec: 0.2, onTimeout: 'reject' } })
  .node('after', { agent: 'pipeline', instructions: 'Conclude.' })
  .edge('gate', 'after')
  .budget({ wallClockSec: 30 }) as GraphBuilder<unknown>;

const soft = graph('replay-soft')
  .node('a', { agent: 'pipeline', instructions: 'Step a.' })
  .node('b', { agent: 'pipeline', instructions: 'Step b.' })
  .node('c', { agent: 'pipeline', instructions: 'Step c.' })
  .edge('a', 'b')
  .edge('b', 'c')
  .budget({ tokens: 100_000, soft: { tokens: 1200 } }) as GraphBuilder<unknown>;

const decisions = (events: Envelope[]) => events.filter((e) => e.type !== 'run.replayed' && e.type !== 'replay.diverged');

type Kind = 'pglite' | 'postgres' | 'postgres + NATS';
const natsUp = (await postgresAvailable()) && (await natsAvailable());

/** One engine on the store (and bus) of `kind`: on NATS, runs and replays go through the cluster's run queue. */
async function open(kind: Kind, llm: LlmPort, graphs: GraphBuilder<unknown>[]): Promise<{ engine: Engine; store: Store; close: () => Promise<void> }> {
  if (kind !== 'postgres + NATS') return makeEngine(kind, { llm, graphs, leaseMs: 600 });
  const db = await createTestDatabase();
  const prefix = natsPrefix('rw');
  const store = await openPgStore({ url: db.url });
  const bus = await connectNatsBus({ url: TEST_NATS_URL, prefix, name: 'rw', ackWaitMs: 4_000 });
  const engine = await Engine.create({
    store,
    bus,
    llm: () => llm,
    tools: toolsWith(),
    nodeId: 'rw',
    leaseMs: 1_000,
    sweepIntervalMs: 0,
    graphs: [...exampleGraphs, ...graphs] as GraphBuilder<unknown>[],
  });
  return {
    engine,
    store,
    close: async () => {
      await engine.shutdown();
      await bus.close();
      await store.close();
      await db.drop();
      await dropNatsPrefix(prefix);
    },
  };
}

const kinds: Kind[] = ['pglite', 'postgres', ...(natsUp ? (['postgres + NATS'] as const) : [])];

describe.each(kinds)('waits replayed exactly on %s', (kind) => {
  let h: Awaited<ReturnType<typeof open>>;
  const llm = countingLlm();
  beforeAll(async () => {
    h = await open(kind, llm, [ask, timed, soft]);
  });
  afterAll(() => h.close());

  const settled = (id: string) =>
    until(async () => {
      const r = await h.store.getRun(id);
      return r && r.status !== 'running' && r.status !== 'pending' && r.owner === null ? r : undefined;
    }, `run ${id} to settle`);
  const waitingOn = async (id: string) =>
    (await until(async () => ((await h.store.getRun(id))?.status === 'waiting' ? h.store.getRun(id) : undefined), `run ${id} to wait`))!.waits[0]!;

  /** The original, driven by `answer` at each wait until it ends (without one, its waits time out). */
  async function recorded(graphName: string, input: unknown, answer?: (w: RunRecord['waits'][number]) => unknown): Promise<RunRecord> {
    const { id } = await h.engine.startRun({ graph: graphName, input });
    for (;;) {
      const r = await settled(id);
      if (r.status !== 'waiting') return r;
      if (!answer) {
        // Woken by the claim loop once its timeout passes.
        await until(async () => (await h.store.getRun(id))?.status !== 'waiting', `run ${id} to time out`);
        continue;
      }
      const w = r.waits[0]!;
      await h.engine.signal(id, { node: w.node, waitId: w.id, payload: answer(w) });
      await until(async () => (await h.store.getRun(id))?.status !== 'waiting', `run ${id} to wake`);
    }
  }

  async function expectReproducedFromEveryStep(original: RunRecord, label: string): Promise<void> {
    const checkpoints = await h.store.listCheckpoints(original.id);
    const log = await allEvents(h.store, original.id);
    expect(
      log.map((e) => e.type),
      label,
    ).toContain('run.waiting');
    for (let step = 0; step < checkpoints.length; step++) {
      const at = `${label} from step ${step}`;
      // The last checkpoint ended the run: nothing to replay after it.
      if (step === checkpoints.length - 1 && log.at(-1)!.seq === checkpoints[step]!.seq) break;
      const calls = llm.calls;
      const replay = await h.engine.waitForRun((await h.engine.replay(original.id, { fromStep: step, mode: 'recorded' })).id, 10_000);
      expect(replay.replay?.divergence ?? null, at).toBeNull();
      expect(replay.status, at).toBe(original.status);
      expect(replay.output, at).toEqual(original.output);
      expect(llm.calls, `${at}: no model call`).toBe(calls);
      // Nobody was asked: no answer is ever sent to the replay, so one that asked a person would
      // never have ended (waitForRun above would have thrown); nothing is left pending for it.
      expect(await h.store.pendingSignals(replay.id), at).toEqual([]);
      const d = await diffRuns(h.store, original, replay);
      expect(d.first, at).toBeNull();
      expect(d.nodes, at).toEqual([]);
      const baseSeq = step === 0 ? 0 : checkpoints[step - 1]!.seq;
      const own = decisions(await allEvents(h.store, replay.id));
      expect(
        own.map((e) => e.type),
        at,
      ).toEqual(log.filter((e) => e.seq > baseSeq).map((e) => e.type));
    }
  }

  it('an approved triage-with-approval run: a recorded replay from every step reproduces its log, approval and clock times included', async () => {
    const original = await recorded('triage-with-approval', { intent: 'refund', charge: 'ch_r1' }, () => ({ approved: true, amount: 5, comment: 'ok' }));
    expect(original.error).toBeNull();
    expect(original.status).toBe('succeeded');
    await expectReproducedFromEveryStep(original, 'approved');
  }, 60_000);

  it('a rejected triage-with-approval run: a recorded replay from every step reproduces its log (refund skipped, no tool call)', async () => {
    const original = await recorded('triage-with-approval', { intent: 'refund', charge: 'ch_r2' }, () => ({ approved: false, comment: 'fraud' }));
    expect(original.nodes.refund?.status).toBe('skipped');
    await expectReproducedFromEveryStep(original, 'rejected');
  }, 60_000);

  it('an approval that timed out: the replay takes the timeout from the original at once', async () => {
    const original = await recorded('replay-timeout', {});
    expect(original.status).toBe('succeeded');
    expect(original.nodes.gate?.status).toBe('skipped');
    await expectReproducedFromEveryStep(original, 'timed out');
  }, 60_000);

  it("an agent's question: the replay registers it at the original's times and gets the original's answer", async () => {
    const original = await recorded('replay-ask', { ticket: 't1' }, () => ({ answer: 'Ada Lovelace' }));
    expect(original.status).toBe('succeeded');
    await expectReproducedFromEveryStep(original, 'question');
  }, 60_000);

  it('a budget grant at a soft limit: the replay raises the limit as the original did and the held call goes on', async () => {
    const original = await recorded('replay-soft', {}, () => ({ decision: 'grant', tokens: 100_000 }));
    expect(original.status).toBe('succeeded');
    await expectReproducedFromEveryStep(original, 'budget grant');
  }, 60_000);

  it('a live replay past the wait waits for a person again', async () => {
    const original = await recorded('triage-with-approval', { intent: 'refund', charge: 'ch_r3' }, () => ({ approved: true }));
    const replay = await h.engine.replay(original.id, { fromStep: 1, mode: 'live' });
    const w = await waitingOn(replay.id);
    expect(w).toMatchObject({ id: 'approval/refund/1', kind: 'approval' });
    await h.engine.cancel(replay.id);
  }, 60_000);
});
