import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { graph, isAoError } from '@ao/graphs';
import type { AgentKind, GraphBuilder } from '@ao/graphs';
import { defineTool, openPgliteStore } from '@ao/runtime';
import type { Envelope, RunRecord, Store } from '@ao/runtime';
import type { Engine } from '../src/mod.js';
import { diffRuns } from '../src/replay.js';
import { allEvents, countingLlm, gate, makeEngine, startNode, toolsWith, until } from './harness.js';

/** A tiny seeded generator, so a failing random graph can be rebuilt from its seed. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return (n: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

/**
 * A random graph: nodes n0..nk, each after the first with one or two parents among the earlier
 * ones (so some run in parallel and some join), some edges conditional on an upstream output,
 * kinds mixed (swarms fan out, pipelines call web_search).
 */
function randomGraph(seed: number): GraphBuilder<unknown> {
  const r = rng(seed);
  const n = 3 + r(4);
  const kinds: AgentKind[] = ['pipeline', 'swarm', 'supervisor'];
  let g = graph(`random-${seed}`);
  for (let i = 0; i < n; i++) {
    const agent = kinds[r(3)]!;
    g = g.node(`n${i}`, {
      agent,
      ...(agent === 'swarm' ? { concurrency: 2 + r(2) } : {}),
      ...(agent === 'pipeline' && r(2) === 0 ? { tools: ['web_search'] } : {}),
      instructions: `Step ${i} of a random graph (seed ${seed}).`,
    });
  }
  for (let j = 1; j < n; j++) {
    const parents = new Set([r(j)]);
    if (j > 1 && r(2) === 0) parents.add(r(j));
    for (const p of parents) {
      const from = `n${p}`;
      if (r(4) === 0) g = g.edge(from, `n${j}`, (ctx) => (ctx.outputs[from]?.text.length ?? 0) % 3 !== 0);
      else g = g.edge(from, `n${j}`);
    }
  }
  return g.budget({ tokens: 500_000, tools: 500 });
}

const RANDOM_SEEDS = [3, 17, 29, 41, 58, 77];

/** The run's decisions minus its bookkeeping, to compare a replay's own log with the original's. */
const decisions = (events: Envelope[]) => events.filter((e) => e.type !== 'run.replayed' && e.type !== 'replay.diverged');

describe('replay: the determinism contract', () => {
  let h: Awaited<ReturnType<typeof makeEngine>>;
  let llm: ReturnType<typeof countingLlm>;
  beforeAll(async () => {
    llm = countingLlm();
    h = await makeEngine('pglite', { llm, graphs: RANDOM_SEEDS.map(randomGraph) });
  });
  afterAll(() => h.close());

  const cases: Array<[string, unknown]> = [
    ['research-swarm', { topic: 'actor systems' }],
    ['triage', { intent: 'refund', order: 'A-17' }],
    ['triage', { intent: 'question' }],
    ['draft-critique', { brief: 'a note on durable agents' }],
    ...RANDOM_SEEDS.map((s): [string, unknown] => [`random-${s}`, { seed: s }]),
  ];

  it.each(cases)(
    'a recorded replay of %s from every step reproduces its log exactly',
    async (graphName, input) => {
      const original = await h.engine.waitForRun((await h.engine.startRun({ graph: graphName, input })).id);
      expect(original.status).toBe('succeeded');
      const checkpoints = await h.store.listCheckpoints(original.id);
      expect(checkpoints.length).toBeGreaterThan(1);
      const log = await allEvents(h.store, original.id);
      for (let step = 0; step < checkpoints.length; step++) {
        const callsBefore = llm.calls;
        const replay = await h.engine.waitForRun((await h.engine.replay(original.id, { fromStep: step, mode: 'recorded' })).id);
        const label = `${graphName} from step ${step}`;
        expect(replay.replay?.divergence ?? null, label).toBeNull();
        expect(replay.status, label).toBe('succeeded');
        expect(replay.output, label).toEqual(original.output);
        expect(llm.calls, `${label}: a recorded replay calls no model`).toBe(callsBefore);
        // The whole history (inherited prefix + the replay's own events) is the original's, decision by decision.
        const d = await diffRuns(h.store, original, replay);
        expect(d.first, label).toBeNull();
        expect(d.nodes, label).toEqual([]);
        // And the replay's own log is exactly the original's events after the checkpoint: no more, no less.
        const baseSeq = step === 0 ? 0 : checkpoints[step - 1]!.seq;
        const own = decisions(await allEvents(h.store, replay.id));
        expect(own.map((e) => e.type).sort(), label).toEqual(
          log
            .filter((e) => e.seq > baseSeq)
            .map((e) => e.type)
            .sort(),
        );
        // The replay's checkpoints continue the original's numbering, with the same per-node state.
        const mine = await h.store.listCheckpoints(replay.id);
        expect(
          mine.map((c) => c.step),
          label,
        ).toEqual(checkpoints.slice(step === 0 ? 0 : step - 1).map((c) => c.step));
      }
    },
    120_000,
  );
});

describe('replay: live, divergence, fork and errors', () => {
  let store: Store;
  beforeAll(async () => {
    store = await openPgliteStore();
  });
  afterAll(() => store.close());

  /** A graph whose route depends on an edge predicate: v1 goes to `long`, v2 to `short` for the same input. */
  const routed = (threshold: number, instructions = 'Write a short answer.') =>
    graph('routed')
      .node('first', { agent: 'pipeline', instructions: 'Restate the question.' })
      .node('long', { agent: 'pipeline', instructions })
      .node('short', { agent: 'pipeline', instructions })
      .node('end', { agent: 'pipeline', instructions: 'Conclude.' })
      .edge('first', 'long', (ctx) => (ctx.outputs.first?.text.length ?? 0) > threshold)
      .edge('first', 'short', (ctx) => (ctx.outputs.first?.text.length ?? 0) <= threshold)
      .edge('long', 'end')
      .edge('short', 'end')
      .budget({ tokens: 100_000 });

  async function withNodes<T>(graphs: GraphBuilder<unknown>[][], f: (...engines: Engine[]) => Promise<T>, tools = toolsWith()): Promise<T> {
    const engines = await Promise.all(graphs.map((g, i) => startNode({ store, nodeId: `n${i}-${Math.random()}`, graphs: g, tools })));
    try {
      return await f(...engines);
    } finally {
      for (const e of engines) await e.shutdown();
    }
  }

  it('a recorded replay after an edge predicate changed reports the divergence at the step it happened, with both envelopes', async () => {
    await withNodes([[routed(0)], [routed(1_000_000)]], async (v1, v2) => {
      const original = await v1.waitForRun((await v1.startRun({ graph: 'routed', input: { q: 'why' } })).id);
      expect(original.nodes.long?.status).toBe('succeeded');
      const replay = await v2.waitForRun((await v2.replay(original.id, { fromStep: 1, mode: 'recorded' })).id);
      expect(replay.status).toBe('failed');
      expect(replay.error?.code).toBe('AO_REPLAY_DIVERGED');
      const d = replay.replay!.divergence!;
      // Step 2 is the supervisor's step after `first` completed: where the predicates are evaluated.
      expect(d.step).toBe(2);
      expect(d.actor).toBe('supervisor');
      // The original's first decision there started `long`; the replay's skips it.
      expect(d.expected).toMatchObject({ type: 'node.start', to: 'supervisor/long' });
      expect(d.actual).toMatchObject({ type: 'node.skipped', to: 'supervisor', payload: { node: 'long' } });
      expect(d.diff).toContain('type: node.start → node.skipped');
      const events = await allEvents(store, replay.id);
      const boundary = events.find((e) => e.type === 'replay.diverged')!;
      expect(boundary.payload).toEqual(d);
      // Nothing ran live after the divergence: no model call of `short` was made.
      expect(events.filter((e) => e.type === 'llm.request' && e.from === 'supervisor/short')).toEqual([]);
    });
  });

  it('a lenient replay serves recordings until the divergence, marks it, then runs live to the end', async () => {
    const llm = countingLlm();
    const store2 = store;
    const v1 = await startNode({ store: store2, nodeId: 'lenient-v1', graphs: [routed(0)] });
    const v2 = await startNode({ store: store2, nodeId: 'lenient-v2', graphs: [routed(1_000_000)], llm });
    try {
      const original = await v1.waitForRun((await v1.startRun({ graph: 'routed', input: { q: 'how' } })).id);
      const replay = await v2.waitForRun((await v2.replay(original.id, { fromStep: 1, mode: 'lenient' })).id);
      expect(replay.status).toBe('succeeded');
      expect(replay.replay?.divergence?.step).toBe(2);
      const events = await allEvents(store, replay.id);
      const boundary = events.findIndex((e) => e.type === 'replay.diverged');
      expect(boundary).toBeGreaterThan(0);
      expect(events.slice(boundary + 1).some((e) => e.type === 'llm.request' && e.from === 'supervisor/short')).toBe(true);
      // `short` and `end` ran live: two model calls, none for what came before the divergence.
      expect(llm.calls).toBe(2);
      expect(replay.nodes.short?.status).toBe('succeeded');
      expect(replay.nodes.long?.status).toBe('skipped');
    } finally {
      await v1.shutdown();
      await v2.shutdown();
    }
  });

  it('a changed prompt is a divergence reported as a readable diff of the prompt text', async () => {
    await withNodes([[routed(0)], [routed(0, 'Write a long, careful answer.')]], async (v1, v2) => {
      const original = await v1.waitForRun((await v1.startRun({ graph: 'routed', input: { q: 'what' } })).id);
      const replay = await v2.waitForRun((await v2.replay(original.id, { fromStep: 1, mode: 'recorded' })).id);
      expect(replay.error?.code).toBe('AO_REPLAY_DIVERGED');
      const d = replay.replay!.divergence!;
      expect(d.actor).toBe('supervisor/long');
      expect(d.expected?.type).toBe('llm.request');
      expect(d.diff[0]).toBe('llm.request changed:');
      expect(d.diff.join('\n')).toContain('messages[0].content:');
      expect(d.diff.join('\n')).toMatch(/\[-short-\]\{\+long, careful\+\}|- Write a short answer\./);
    });
  });

  it('a live replay runs nothing before its step again and calls the changed tool after it', async () => {
    const impl = { version: 'v1', calls: [] as string[] };
    const lookup = defineTool({
      name: 'lookup',
      description: 'Look a term up.',
      effect: 'read',
      input: z.object({ term: z.string() }),
      handler: async ({ term }) => {
        impl.calls.push(impl.version);
        return { term, source: impl.version };
      },
    });
    const g = graph('lookups')
      .node('a', { agent: 'pipeline', tools: ['lookup'], args: () => ({ lookup: { term: 'first' } }) })
      .node('b', { agent: 'pipeline', tools: ['lookup'], args: () => ({ lookup: { term: 'second' } }) })
      .edge('a', 'b')
      .budget({ tokens: 100_000 });
    const llm = countingLlm();
    const e = await startNode({ store, nodeId: 'live-replay', graphs: [g], tools: toolsWith(lookup), llm });
    try {
      const original = await e.waitForRun((await e.startRun({ graph: 'lookups' })).id);
      expect(impl.calls).toEqual(['v1', 'v1']);
      const callsBefore = llm.calls;
      impl.version = 'v2';
      // Checkpoint 2: `a` finished, `b` started: only `b` runs again, live.
      const replay = await e.waitForRun((await e.replay(original.id, { fromStep: 2 })).id);
      expect(replay.status).toBe('succeeded');
      expect(impl.calls).toEqual(['v1', 'v1', 'v2']);
      expect(llm.calls - callsBefore).toBe(1);
      const results = (await allEvents(store, replay.id)).filter((x) => x.type === 'tool.result');
      expect(results.map((x) => (x.payload as { result: { source: string } }).result.source)).toEqual(['v2']);
      const d = await e.diff(original.id, replay.id);
      expect(d.nodes.map((n) => n.node)).toContain('b');
      expect(d.nodes.map((n) => n.node)).not.toContain('a');
      expect(d.first?.actor).toBe('supervisor/b');
    } finally {
      await e.shutdown();
    }
  });

  it('a replay whose engine stops mid-way is resumed by another from its own checkpoint, inheriting the same prefix', async () => {
    const entered = gate();
    const release = gate();
    let calls = 0;
    const slow = defineTool({
      name: 'slow_lookup',
      description: 'A lookup that waits for the test.',
      effect: 'read',
      input: z.object({ term: z.string() }),
      handler: async ({ term }) => {
        calls += 1;
        if (calls === 3) {
          entered.open();
          await release.promise;
        }
        return { term, call: calls > 3 ? 'after-handover' : 'first' };
      },
    });
    const g = graph('slow-lookups')
      .node('a', { agent: 'pipeline', tools: ['slow_lookup'], args: () => ({ slow_lookup: { term: 'first' } }) })
      .node('b', { agent: 'pipeline', tools: ['slow_lookup'], args: () => ({ slow_lookup: { term: 'second' } }) })
      .edge('a', 'b')
      .budget({ tokens: 100_000 });
    const tools = toolsWith(slow);
    const a = await startNode({ store, nodeId: 'replay-a', graphs: [g], tools });
    const original = await a.waitForRun((await a.startRun({ graph: 'slow-lookups' })).id);
    expect(calls).toBe(2);
    const replay = await a.replay(original.id, { fromStep: 2 });
    await entered.promise; // b's call is in flight in the replay
    await a.shutdown();
    release.open();
    const b = await startNode({ store, nodeId: 'replay-b', graphs: [g], tools });
    try {
      const done = await until(async () => {
        const r = await store.getRun(replay.id);
        return r && r.status === 'succeeded' ? r : undefined;
      }, 'the replay to finish on the second engine');
      expect(done.replay).toMatchObject({ of: original.id, fromStep: 2 });
      const events = await allEvents(store, replay.id);
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
      expect(events.filter((e) => e.type === 'run.replayed')).toHaveLength(1);
      expect(events.filter((e) => e.type === 'run.finished')).toHaveLength(1);
      // a ran before the step: never again, on either engine; b's read was made again after the handover.
      expect(events.some((e) => e.from === 'supervisor/a')).toBe(false);
      expect(calls).toBe(4);
      const d = await b.diff(original.id, replay.id);
      expect(d.nodes.map((n) => n.node)).toEqual(['b']);
    } finally {
      await b.shutdown();
    }
  });

  it('a fork records its overrides and runs later nodes with the new instructions and budget', async () => {
    await withNodes([[routed(0)]], async (e) => {
      const original = await e.waitForRun((await e.startRun({ graph: 'routed', input: { q: 'fork me' } })).id);
      const overrides = { nodes: { end: { instructions: 'Conclude in one French sentence.' } }, budget: { tokens: 200_000 }, input: { q: 'forked' } };
      const fork = await e.waitForRun((await e.replay(original.id, { fromStep: 2, overrides })).id);
      expect(fork.status).toBe('succeeded');
      expect(fork.replay).toMatchObject({ of: original.id, fromStep: 2, mode: 'live', overrides });
      expect(fork.budget).toMatchObject({ tokens: 200_000 });
      expect(fork.input).toEqual({ q: 'forked' });
      const events = await allEvents(store, fork.id);
      expect(events[0]).toMatchObject({ seq: 1, type: 'run.replayed', payload: { of: original.id, overrides } });
      const endPrompt = events.find((x) => x.type === 'llm.request' && x.from === 'supervisor/end')!.payload as { messages: Array<{ content: string }> };
      expect(endPrompt.messages[0]!.content).toContain('Conclude in one French sentence.');
      expect(endPrompt.messages[1]!.content).toContain('forked');
    });
  });

  it('an unsafe tool is never called live in a replay unless the replay allows it by name', async () => {
    const sent: string[] = [];
    const sendEmail = defineTool({
      name: 'send_email',
      description: 'Send an email (no way to ask whether it was sent).',
      effect: 'unsafe',
      input: z.object({ to: z.string() }),
      handler: async ({ to }, ctx) => {
        sent.push(ctx.idempotencyKey);
        return { sent: to };
      },
    });
    const mailer = graph('mailer')
      .node('draft', { agent: 'pipeline', instructions: 'Draft the email.' })
      .node('send', { agent: 'pipeline', tools: ['send_email'], args: () => ({ send_email: { to: 'ops@example.com' } }) })
      .edge('draft', 'send')
      .budget({ tokens: 100_000 });
    await withNodes(
      [[mailer]],
      async (e) => {
        const original = await e.waitForRun((await e.startRun({ graph: 'mailer' })).id);
        expect(original.status).toBe('succeeded');
        expect(sent).toHaveLength(1);
        // Checkpoint 2: `draft` finished, `send` started.
        const refused = await e.waitForRun((await e.replay(original.id, { fromStep: 2 })).id);
        expect(refused.status).toBe('failed');
        expect(refused.nodes.send?.error?.code).toBe('AO_REPLAY_UNSAFE_TOOL');
        expect((await allEvents(store, refused.id)).filter((x) => x.type === 'tool.call')).toEqual([]);
        expect(sent).toHaveLength(1);
        // Recorded: the original's result is served, nothing is sent.
        const recorded = await e.waitForRun((await e.replay(original.id, { fromStep: 2, mode: 'recorded' })).id);
        expect(recorded.status).toBe('succeeded');
        expect(sent).toHaveLength(1);
        // Allowed by name: sent live, under the replay's own idempotency key.
        const allowed = await e.waitForRun((await e.replay(original.id, { fromStep: 2, overrides: { allowUnsafe: ['send_email'] } })).id);
        expect(allowed.status).toBe('succeeded');
        expect(sent).toEqual([sent[0], `${allowed.id}/supervisor/send/1`]);
      },
      toolsWith(sendEmail),
    );
  });

  it('refuses a step past the last replayable one, a run without checkpoints, and overrides of unknown nodes, each with its code', async () => {
    await withNodes([[routed(0)]], async (e) => {
      const original = await e.waitForRun((await e.startRun({ graph: 'routed', input: { q: 'x' } })).id);
      const last = (await store.listCheckpoints(original.id)).at(-1)!.step;
      const codeOf = async (p: Promise<RunRecord>) =>
        p.then(
          () => 'ok',
          (err: unknown) => (isAoError(err) ? `${err.code}:${err.field ?? ''}` : String(err)),
        );
      expect(await codeOf(e.replay(original.id, { fromStep: last + 5 }))).toBe('AO_REPLAY_STEP_OUT_OF_RANGE:fromStep');
      // The last checkpoint ended the run: nothing to replay after it.
      expect(await codeOf(e.replay(original.id, { fromStep: last }))).toBe('AO_REPLAY_STEP_OUT_OF_RANGE:fromStep');
      expect(await codeOf(e.replay(original.id, { fromStep: 1, overrides: { nodes: { nope: { instructions: 'x' } } } }))).toBe(
        'AO_REPLAY_INCOMPATIBLE:overrides.nodes.nope',
      );
      expect(await codeOf(e.replay('no-such-run', { fromStep: 1 }))).toBe('AO_RUN_NOT_FOUND:id');
      await store.sweep('routed', { keepCheckpoints: 0 });
      expect(await codeOf(e.replay(original.id, { fromStep: 1 }))).toBe('AO_CHECKPOINT_NOT_FOUND:fromStep');
    });
  });
});
