import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleGraphs, graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { connectNatsBus, emitterOf, InProcessBus, OfflineLlm, openPgliteStore, openPgStore, systemClock } from '@ao/runtime';
import type { Bus, Clock, Envelope, LlmPort, RunRecord, Store } from '@ao/runtime';
import { createTestDatabase, dropNatsPrefix, natsAvailable, natsPrefix, postgresAvailable, TEST_NATS_URL } from '@ao/runtime/testing';
import { Engine, Verifier } from '../src/mod.js';
import { diffRuns } from '../src/replay.js';
import { allEvents, gate, startNode, toolsWith, until } from './harness.js';

/**
 * Answers a run took without sleeping, replayed exactly (issue 19): one that came before its wait
 * was opened (taken in the step that opened it) and one taken while the run was hosted (a
 * person's answer or a timeout while another node ran) are served by a recorded replay from the
 * original's log at the steps the original took them, so the replay reproduces the log from every
 * step without sleeping and without asking anyone.
 */

/** `act`'s approval is reached once `prepare` ends; its model call is held until the test lets it go. */
const early = graph('early-approval')
  .node('prepare', { agent: 'pipeline', instructions: 'HOLD: prepare the refund.' })
  .node('act', { agent: 'pipeline', instructions: 'Issue the refund.', approval: { prompt: 'Refund?' } })
  .edge('prepare', 'act') as GraphBuilder<unknown>;

/** `act`'s approval opens at once while `slow` runs (held): an answer then is taken while the run is hosted. */
const hosted = graph('hosted-approval')
  .node('slow', { agent: 'pipeline', instructions: 'HOLD: gather the context.' })
  .node('act', { agent: 'pipeline', instructions: 'Issue the refund.', approval: { prompt: 'Refund?' } })
  .node('sum', { agent: 'pipeline', instructions: 'Summarise.' })
  .edge('slow', 'sum')
  .edge('act', 'sum') as GraphBuilder<unknown>;

/** An approval that times out (approved) an hour after it opened, while `slow` still runs: `first` ended in between. */
const hostedTimeout = graph('hosted-timeout')
  .node('first', { agent: 'pipeline', instructions: 'Read the ticket.' })
  .node('slow', { agent: 'pipeline', instructions: 'HOLD: gather the context.' })
  .node('act', { agent: 'pipeline', instructions: 'Issue the refund.', approval: { prompt: 'Refund?', timeoutSec: 3600, onTimeout: 'approve' } })
  .node('sum', { agent: 'pipeline', instructions: 'Summarise.' })
  .edge('first', 'slow')
  .edge('slow', 'sum')
  .edge('act', 'sum') as GraphBuilder<unknown>;

/** `ask`'s agent asks a question mid-node while `slow` runs (held): its answer is taken while the run is hosted. */
const hostedQuestion = graph('hosted-question')
  .node('slow', { agent: 'pipeline', instructions: 'HOLD: gather the context.' })
  .node('ask', { agent: 'pipeline', instructions: 'Draft the reply.', interrupt: { prompt: 'Ask for the order number when it is missing.' } })
  .node('sum', { agent: 'pipeline', instructions: 'Summarise.' })
  .edge('slow', 'sum')
  .edge('ask', 'sum') as GraphBuilder<unknown>;

const MINUTE = 60_000;

/**
 * The system clock, which the test can move on (`pass`): a timer of a minute or more fires when
 * the test moves the clock past it, not on its own. A timeout an hour away passes when the test says.
 */
class PassingClock implements Clock {
  private offset = 0;
  private long: Array<{ at: number; fn: () => void; live: boolean }> = [];
  now(): number {
    return Date.now() + this.offset;
  }
  setTimer(ms: number, fn: () => void): () => void {
    if (ms < MINUTE) return systemClock.setTimer(ms, fn);
    const t = { at: this.now() + ms, fn, live: true };
    this.long.push(t);
    return () => {
      t.live = false;
    };
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return systemClock.sleep(ms, signal);
  }
  pass(ms: number): void {
    this.offset += ms;
    const due = this.long.filter((t) => t.live && t.at <= this.now());
    this.long = this.long.filter((t) => !due.includes(t));
    for (const t of due) t.fn();
  }
}

/** The offline model, counting its calls; a call whose prompt says HOLD waits until `release`. */
function heldLlm(): LlmPort & { calls: number; hold: () => void; release: () => void } {
  const inner = new OfflineLlm();
  let held = gate();
  const llm = {
    provider: inner.provider,
    calls: 0,
    hold() {
      held = gate();
    },
    release() {
      held.open();
    },
    async complete(req: Parameters<LlmPort['complete']>[0], signal?: AbortSignal) {
      llm.calls += 1;
      if (JSON.stringify(req.messages).includes('HOLD')) await held.promise;
      return inner.complete(req, signal);
    },
  };
  return llm;
}

type Kind = 'pglite' | 'postgres + NATS';
const natsUp = (await postgresAvailable()) && (await natsAvailable());

/** One engine on the store (and bus) of `kind`: on NATS, runs and replays go through the cluster's run queue. */
async function open(
  kind: Kind,
  llm: LlmPort,
  clock: Clock,
  graphs: GraphBuilder<unknown>[],
): Promise<{ engine: Engine; store: Store; close: () => Promise<void> }> {
  const nats = kind === 'postgres + NATS';
  const db = nats ? await createTestDatabase() : undefined;
  const prefix = natsPrefix('ea');
  const store = db ? await openPgStore({ url: db.url }) : await openPgliteStore();
  const bus: Bus = nats ? await connectNatsBus({ url: TEST_NATS_URL, prefix, name: 'ea', ackWaitMs: 4_000 }) : new InProcessBus();
  const engine = await Engine.create({
    store,
    bus,
    clock,
    llm: () => llm,
    tools: toolsWith(),
    ...(nats ? { nodeId: 'ea' } : {}),
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
      await db?.drop();
      if (nats) await dropNatsPrefix(prefix);
    },
  };
}

const kinds: Kind[] = ['pglite', ...(natsUp ? (['postgres + NATS'] as const) : [])];
const decisions = (events: Envelope[]) => events.filter((e) => e.type !== 'run.replayed' && e.type !== 'replay.diverged');

/** Each actor's envelope types in order (concurrent actors interleave differently each time; each actor's order is the same). */
function byActor(events: Envelope[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const e of events) (out[emitterOf(e)] ??= []).push(e.type);
  return out;
}

describe.each(kinds)('answers taken without sleeping, replayed on %s', (kind) => {
  let h: Awaited<ReturnType<typeof open>>;
  const llm = heldLlm();
  const clock = new PassingClock();
  beforeAll(async () => {
    h = await open(kind, llm, clock, [early, hosted, hostedTimeout, hostedQuestion]);
  });
  afterAll(() => h.close());

  const finished = (id: string) =>
    until(async () => {
      const r = await h.store.getRun(id);
      return r && ['succeeded', 'failed', 'cancelled', 'budget_exceeded'].includes(r.status) ? r : undefined;
    }, `run ${id} to finish`);
  const logged = (id: string, type: string) => until(async () => (await allEvents(h.store, id)).find((e) => e.type === type), `${type} in run ${id}`);

  async function expectReproducedFromEveryStep(original: RunRecord, label: string): Promise<void> {
    const checkpoints = await h.store.listCheckpoints(original.id);
    const log = await allEvents(h.store, original.id);
    for (let step = 0; step < checkpoints.length; step++) {
      const at = `${label} from step ${step}`;
      // The last checkpoint ended the run: nothing to replay after it.
      if (step === checkpoints.length - 1 && log.at(-1)!.seq === checkpoints[step]!.seq) break;
      const calls = llm.calls;
      const replay = await h.engine.waitForRun((await h.engine.replay(original.id, { fromStep: step, mode: 'recorded' })).id, 20_000);
      expect(replay.replay?.divergence ?? null, at).toBeNull();
      expect(replay.status, at).toBe(original.status);
      expect(replay.output, at).toEqual(original.output);
      expect(llm.calls, `${at}: no model call`).toBe(calls);
      const d = await diffRuns(h.store, original, replay);
      expect(d.first, at).toBeNull();
      expect(d.nodes, at).toEqual([]);
      const baseSeq = step === 0 ? 0 : checkpoints[step - 1]!.seq;
      const own = decisions(await allEvents(h.store, replay.id));
      // Each actor wrote the same envelopes in the same order: it never slept (no run.waiting the original did not write).
      expect(byActor(own), at).toEqual(byActor(log.filter((e) => e.seq > baseSeq)));
      // Step by step as the original (the checkpoint it starts from is copied as its own).
      expect(
        (await h.store.listCheckpoints(replay.id)).map((c) => c.step),
        at,
      ).toEqual(checkpoints.filter((c) => c.step > step || (step > 0 && c.step === step)).map((c) => c.step));
    }
  }

  /** `ao verify`'s check: replayed from step 0 on a scratch store, given where the run's steps ended. */
  async function expectVerified(original: RunRecord): Promise<void> {
    const v = new Verifier({ graphs: [...exampleGraphs, early, hosted, hostedTimeout, hostedQuestion] as GraphBuilder<unknown>[], tools: toolsWith() });
    try {
      const verdict = await v.verify(original, await allEvents(h.store, original.id), await h.store.listCheckpoints(original.id));
      expect(verdict.divergence ?? verdict.error ?? null).toBeNull();
      expect(verdict.outcome).toBe('identical');
    } finally {
      await v.close();
    }
  }

  it('an approval answered before its wait opened: the replay takes the answer in the step that opens the wait', async () => {
    llm.hold();
    const { id } = await h.engine.startRun({ graph: 'early-approval', input: { order: 'A-1' } });
    await h.engine.signal(id, { node: 'act', payload: { approved: true, comment: 'pre-approved' } });
    llm.release();
    const original = await finished(id);
    expect(original.status).toBe('succeeded');
    const types = (await allEvents(h.store, id)).map((e) => e.type);
    // The original never slept: the answer was in when the wait opened.
    expect(types).not.toContain('run.waiting');
    expect(types.indexOf('wait.resolved')).toBe(types.indexOf('wait.opened') + 1);
    await expectReproducedFromEveryStep(original, 'early answer');
    await expectVerified(original);
  }, 120_000);

  it('an approval answered while another node ran: the replay takes it at the same step, before the other node ends', async () => {
    llm.hold();
    const { id } = await h.engine.startRun({ graph: 'hosted-approval', input: { order: 'A-2' } });
    const opened = (await logged(id, 'wait.opened')).payload as { id: string };
    await h.engine.signal(id, { node: 'act', waitId: opened.id, payload: { approved: true } });
    await logged(id, 'wait.resolved');
    // `act` ran and ended while `slow` was still held.
    await until(async () => (await h.store.getRun(id))?.nodes.act?.status === 'succeeded', 'act to end');
    llm.release();
    const original = await finished(id);
    expect(original.status).toBe('succeeded');
    expect((await allEvents(h.store, id)).map((e) => e.type)).not.toContain('run.waiting');
    await expectReproducedFromEveryStep(original, 'hosted answer');
  }, 120_000);

  it('an approval that timed out while another node ran: the replay takes the timeout at the same step, whatever its own clock', async () => {
    llm.hold();
    const { id } = await h.engine.startRun({ graph: 'hosted-timeout', input: { order: 'A-3' } });
    await until(async () => (await h.store.getRun(id))?.nodes.slow?.status === 'running', 'slow to start');
    clock.pass(3600_000);
    const resolved = await logged(id, 'wait.resolved');
    expect((resolved.payload as { outcome: { kind: string } }).outcome.kind).toBe('timeout');
    // Between the wait's opening and its timeout, `first` ended and `slow` started.
    const log = await allEvents(h.store, id);
    expect(log.find((e) => e.type === 'node.completed')!.seq).toBeLessThan(resolved.seq);
    await until(async () => (await h.store.getRun(id))?.nodes.act?.status === 'succeeded', 'act to end');
    llm.release();
    const original = await finished(id);
    expect(original.status).toBe('succeeded');
    await expectReproducedFromEveryStep(original, 'hosted timeout');
    await expectVerified(original);
  }, 120_000);

  it("an agent's question answered while another node ran: the replay answers the asking actor at the same step", async () => {
    llm.hold();
    const { id } = await h.engine.startRun({ graph: 'hosted-question', input: { ticket: 'T-9' } });
    const registered = (await logged(id, 'wait.registered')).payload as { id: string };
    // The supervisor opens it in a step of its own, after the agent's registration is written.
    await until(async () => (await h.store.getRun(id))?.waits.some((w) => w.id === registered.id), 'the question to be open');
    await h.engine.signal(id, { node: 'ask', waitId: registered.id, payload: { answer: 'Order A-7731' } });
    await logged(id, 'wait.resolved');
    await until(async () => (await h.store.getRun(id))?.nodes.ask?.status === 'succeeded', 'ask to end');
    llm.release();
    const original = await finished(id);
    expect(original.status).toBe('succeeded');
    expect((await allEvents(h.store, id)).map((e) => e.type)).not.toContain('run.waiting');
    await expectReproducedFromEveryStep(original, 'hosted question');
    await expectVerified(original);
  }, 120_000);
});

describe('a run handed over while a question was open, replayed', () => {
  it('the step the new host made on taking the run over (reading no answer) is made again, and the answer after it is taken at its step', async () => {
    const llm = heldLlm();
    const store = await openPgliteStore();
    const graphs = [hostedQuestion];
    const a = await startNode({ store, nodeId: 'ho-a', graphs, llm, leaseMs: 1_000 });
    let b: Engine | undefined;
    try {
      llm.hold();
      const { id } = await a.startRun({ graph: 'hosted-question', input: { ticket: 'T-10' } });
      const events = () => allEvents(store, id);
      const registered = await until(async () => (await events()).find((e) => e.type === 'wait.registered'), 'the question');
      await until(async () => (await store.getRun(id))?.waits.some((w) => w.id === (registered.payload as { id: string }).id), 'the question to be open');
      await a.shutdown();
      const before = (await store.listCheckpoints(id)).length;
      b = await startNode({ store, nodeId: 'ho-b', graphs, llm, leaseMs: 1_000 });
      // The new host took the run over with the question open: a step of its own, with no envelope.
      await until(async () => (await store.listCheckpoints(id)).length > before, 'the take-over step');
      await b.signal(id, { node: 'ask', waitId: (registered.payload as { id: string }).id, payload: { answer: 'Order A-7731' } });
      await until(async () => (await store.getRun(id))?.nodes.ask?.status === 'succeeded', 'ask to end');
      llm.release();
      const original = await b.waitForRun(id, 30_000);
      expect(original.status).toBe('succeeded');
      const checkpoints = await store.listCheckpoints(id);
      const log = await events();
      for (let step = 0; step < checkpoints.length; step++) {
        if (step === checkpoints.length - 1 && log.at(-1)!.seq === checkpoints[step]!.seq) break;
        const at = `from step ${step}`;
        const replay = await b.waitForRun((await b.replay(id, { fromStep: step, mode: 'recorded' })).id, 20_000);
        expect(replay.replay?.divergence ?? null, at).toBeNull();
        expect(replay.status, at).toBe('succeeded');
        expect((await diffRuns(store, original, replay)).first, at).toBeNull();
        expect(
          (await store.listCheckpoints(replay.id)).map((c) => c.step),
          at,
        ).toEqual(checkpoints.filter((c) => c.step > step || (step > 0 && c.step === step)).map((c) => c.step));
      }
    } finally {
      llm.release();
      await b?.shutdown();
      await store.close();
    }
  }, 120_000);
});
