import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { graph } from '@ao/graphs';
import type { Budget, GraphBuilder } from '@ao/graphs';
import { estimateTokens } from '@ao/runtime';
import type { Envelope, LlmPort, LlmRequest, LlmResponse } from '@ao/runtime';
import { captureLog, logLine } from '@ao/runtime/testing';
import type { LogCapture } from '@ao/runtime/testing';
import { allEvents, makeEngine, sleep } from './harness.js';

/** Fixed fast-check seed of the engine-level property (report it with any failure). */
const SEED = 20_250_611;
const NUM_RUNS = 40;

/** A small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A scripted model, deterministic per conversation (its randomness is seeded from the messages,
 * not from the `maxTokens` it was granted, so a budget that shrinks a grant does not change what
 * the run does): it calls 0-3 of the offered tools, counts its input as the runtime reserves it
 * (the provider's count), and writes up to 400 tokens, cut at the granted `maxTokens`.
 */
function scriptedLlm(): LlmPort & { calls: number; overGrant: number } {
  const port = {
    provider: 'scripted',
    calls: 0,
    /** Calls whose reported usage exceeded what was asked (must stay 0: the test's own contract). */
    overGrant: 0,
    async complete(req: LlmRequest, signal?: AbortSignal): Promise<LlmResponse> {
      port.calls += 1;
      const seed = createHash('sha256').update(JSON.stringify(req.messages)).digest().readUInt32BE(0);
      const rnd = prng(seed);
      // A little latency, so branches interleave differently from call to call.
      const wait = Math.floor(rnd() * 4);
      if (wait) {
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, wait);
          signal?.addEventListener('abort', () => (clearTimeout(t), reject(Object.assign(new Error('aborted'), { name: 'AbortError' }))), { once: true });
        });
      }
      const estimate = estimateTokens(JSON.stringify(req.messages) + JSON.stringify(req.tools ?? []));
      const inputTokens = estimate;
      const outputTokens = Math.min(Math.floor(400 * rnd()), req.maxTokens);
      if (inputTokens > estimate || outputTokens > req.maxTokens) port.overGrant += 1;
      const offered = req.tools ?? [];
      const n = offered.length ? Math.floor(rnd() * 4) : 0;
      const toolCalls = Array.from({ length: n }, (_, i) => {
        const t = offered[Math.floor(rnd() * offered.length)]!;
        return { id: `c${seed.toString(16)}-${i}`, name: t.name, arguments: t.name === 'web_search' ? { query: `q${i}` } : {} };
      });
      return {
        model: 'scripted-1',
        message: { content: toolCalls.length ? '' : `answer ${seed.toString(16)}`, toolCalls },
        usage: { inputTokens, outputTokens },
        finishReason: toolCalls.length ? 'tool_calls' : 'stop',
      };
    },
  };
  return port;
}

const TOOL_NAMES = ['noop', 'web_search'] as const;

interface NodeSpec {
  /** A sub-budget of the node, as a fraction of the run's limit (or absolute, without one). */
  sub: { tokens?: number; tools?: number } | undefined;
  agent: 'pipeline' | 'swarm';
  concurrency: number;
  tools: string[];
  maxTurns: number;
  maxTokens: number;
}
interface Case {
  nodes: NodeSpec[];
  tokens: number | undefined;
  tools: number | undefined;
  perTool: Partial<Record<(typeof TOOL_NAMES)[number], number>>;
}

const nodeArb: fc.Arbitrary<NodeSpec> = fc.record({
  sub: fc.option(fc.record({ tokens: fc.integer({ min: 200, max: 20_000 }), tools: fc.integer({ min: 1, max: 20 }) }, { requiredKeys: [] }), {
    nil: undefined,
    freq: 3,
  }),
  agent: fc.constantFrom('pipeline' as const, 'swarm' as const),
  concurrency: fc.integer({ min: 1, max: 16 }),
  tools: fc.subarray([...TOOL_NAMES]),
  maxTurns: fc.integer({ min: 1, max: 6 }),
  maxTokens: fc.integer({ min: 16, max: 400 }),
});

const caseArb: fc.Arbitrary<Case> = fc
  .record({
    nodes: fc.array(nodeArb, { minLength: 1, maxLength: 3 }),
    tokens: fc.option(fc.oneof(fc.integer({ min: 300, max: 5_000 }), fc.integer({ min: 5_000, max: 80_000 })), { nil: undefined, freq: 4 }),
    tools: fc.option(fc.integer({ min: 1, max: 30 }), { nil: undefined }),
    caps: fc.record({ noop: fc.integer({ min: 1, max: 10 }), web_search: fc.integer({ min: 1, max: 10 }) }),
    capOn: fc.subarray([...TOOL_NAMES]),
  })
  .map(({ nodes, tokens, tools, caps, capOn }) => {
    const used = new Set(nodes.flatMap((n) => n.tools));
    const perTool: Case['perTool'] = {};
    for (const t of capOn) if (used.has(t)) perTool[t] = caps[t];
    return { nodes, tokens, tools, perTool };
  });

let graphs = 0;
type SubBudget = { tokens?: number; tools?: number };
function buildGraph(c: Case): { name: string; builder: GraphBuilder<unknown>; budget: Budget; subs: Record<string, SubBudget> } {
  const name = `budget-prop-${++graphs}`;
  let b = graph(name);
  const subs: Record<string, SubBudget> = {};
  c.nodes.forEach((n, i) => {
    // A sub-budget may not exceed the run's own limit (the builder refuses it): clamp it.
    const sub: SubBudget = {};
    if (n.sub?.tokens !== undefined) sub.tokens = Math.min(n.sub.tokens, c.tokens ?? Infinity);
    if (n.sub?.tools !== undefined) sub.tools = Math.min(n.sub.tools, c.tools ?? Infinity);
    if (Object.keys(sub).length) subs[`n${i}`] = sub;
    b = b.node(`n${i}`, {
      ...(Object.keys(sub).length ? { budget: sub } : {}),
      agent: n.agent,
      tools: n.tools,
      maxTurns: n.maxTurns,
      maxTokens: n.maxTokens,
      ...(n.agent === 'swarm' ? { concurrency: n.concurrency } : {}),
    });
    if (i > 0) b = b.edge(`n${i - 1}`, `n${i}`);
  });
  const budget: Budget = {
    ...(c.tokens !== undefined ? { tokens: c.tokens } : {}),
    ...(c.tools !== undefined ? { tools: c.tools } : {}),
    ...(Object.keys(c.perTool).length ? { perTool: c.perTool as Record<string, number> } : {}),
  };
  if (Object.keys(budget).length) b = b.budget(budget);
  return { name, builder: b as GraphBuilder<unknown>, budget, subs };
}

const payload = <T>(e: Envelope) => e.payload as T;

/**
 * What a stopped actor may still write after run.finished: the completion of a call it had
 * already started (a known bug, see budget-stop-race.test.ts), never the start of a new one.
 */
const COMPLETIONS = new Set(['llm.response', 'llm.failed', 'tool.result', 'budget.settle', 'budget.release']);

describe('budget property: random graphs on one engine never pass their limits', () => {
  const llm = scriptedLlm();
  let h: Awaited<ReturnType<typeof makeEngine>>;
  const stats = { runs: 0, exceeded: 0, succeeded: 0, refusedPerTool: 0, toolResults: 0, lateCrashes: 0 };
  let logs: LogCapture | undefined;
  beforeAll(async () => {
    // The known late-abort bug (budget-stop-race.test.ts) logs a crash of a stopped branch that
    // could not report to the closed journal: count those here instead of flooding the output.
    logs = captureLog({
      forward: (r) => {
        if (!/could not report the crash of .* is closed/s.test(logLine(r))) return true;
        stats.lateCrashes += 1;
        return false;
      },
    });
    h = await makeEngine('pglite', { llm, sweepIntervalMs: 0 });
  });
  afterAll(async () => {
    logs?.restore();
    console.log(
      `[budget-property] seed ${SEED}: ${stats.runs} runs, ${stats.succeeded} succeeded, ${stats.exceeded} budget_exceeded, ${llm.calls} model calls, ` +
        `${stats.toolResults} tool results, ${stats.refusedPerTool} per-tool refusals, ${stats.lateCrashes} late-abort crashes (known bug)`,
    );
    await h?.close();
  });

  it(`settled tokens, tool calls and per-tool calls stay within the limits, and a run stopped by its budget starts no call after the stop (seed ${SEED})`, async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, fc.nat(), async (c, salt) => {
        const { name, builder, budget, subs } = buildGraph(c);
        h.engine.register(builder);
        const run = await h.engine.startRun({ graph: name, input: { salt } });
        const done = await h.engine.waitForRun(run.id, 30_000);
        stats.runs += 1;
        expect(['succeeded', 'budget_exceeded']).toContain(done.status);
        const events = await allEvents(h.store, run.id);

        // One run.finished, with the run's status; after it, no call starts.
        const finished = events.filter((e) => e.type === 'run.finished');
        expect(finished).toHaveLength(1);
        expect(payload<{ status: string }>(finished[0]!).status).toBe(done.status);
        const late = events.filter((e) => e.seq > finished[0]!.seq && !COMPLETIONS.has(e.type));
        expect(late.map((e) => `${e.seq} ${e.type} ${e.from}`)).toEqual([]);

        // Tokens: the sum of what calls settled for never passes the run's limit, nor a node's.
        const nodeOf = new Map(
          events
            .filter((e) => e.type === 'budget.granted')
            .map((e) => [payload<{ key: string }>(e).key, payload<{ reservation: { node: string } }>(e).reservation.node]),
        );
        const settles = events.filter((e) => e.type === 'budget.settle').map((e) => payload<{ key: string; tokens: number; tool?: string }>(e));
        const settledTokens = settles.reduce((s, p) => s + p.tokens, 0);
        if (budget.tokens !== undefined) expect(settledTokens).toBeLessThanOrEqual(budget.tokens);
        for (const [node, sub] of Object.entries(subs)) {
          const mine = settles.filter((p) => nodeOf.get(p.key) === node);
          if (sub.tokens !== undefined) expect(mine.reduce((s, p) => s + p.tokens, 0)).toBeLessThanOrEqual(sub.tokens);
          if (sub.tools !== undefined) expect(mine.filter((p) => p.tool).length).toBeLessThanOrEqual(sub.tools);
        }

        // Tools: calls that ran (a tool.result each) stay within the tools limit and each cap.
        const results = events.filter((e) => e.type === 'tool.result').map((e) => payload<{ name: string }>(e).name);
        stats.toolResults += results.length;
        if (budget.tools !== undefined) expect(results.length).toBeLessThanOrEqual(budget.tools);
        for (const [tool, cap] of Object.entries(budget.perTool ?? {})) expect(results.filter((n) => n === tool).length).toBeLessThanOrEqual(cap);
        // And every tool.call that ran was granted first.
        const grantedKeys = new Set(events.filter((e) => e.type === 'budget.granted').map((e) => payload<{ key: string }>(e).key));
        for (const e of events.filter((x) => x.type === 'tool.call' || x.type === 'llm.request'))
          expect(grantedKeys.has(payload<{ key: string }>(e).key)).toBe(true);

        const refusals = events.filter((e) => e.type === 'budget.refused').map((e) => payload<{ limit: string; stop: boolean }>(e));
        stats.refusedPerTool += refusals.filter((r) => r.limit === 'perTool').length;
        for (const r of refusals) expect(r.stop).toBe(r.limit !== 'perTool');

        if (done.status === 'succeeded') {
          stats.succeeded += 1;
          expect(refusals.filter((r) => r.stop)).toEqual([]);
          return;
        }
        stats.exceeded += 1;
        expect(done.error).toMatchObject({ code: 'AO_BUDGET_EXCEEDED' });
        // The error names the limit that was hit, its scope, and its value in that scope.
        const d = (done.error as unknown as { details: { limit: 'tokens' | 'tools'; scope: string; value: number; used: number; actor: string } }).details;
        expect(['tokens', 'tools']).toContain(d.limit);
        expect(d.value).toBe(d.scope === 'run' ? budget[d.limit] : subs[d.scope.replace(/^node:/, '')]?.[d.limit]);
        expect(typeof d.used).toBe('number');
        expect(d.actor).toMatch(/^supervisor\//);
        expect(h.engine.liveActors(run.id)).toBe(0);
        // The event that stopped it: the budget actor's budget.exceeded, or a node failing with
        // AO_BUDGET_EXCEEDED, whichever came first.
        const stop = events.find(
          (e) => e.type === 'budget.exceeded' || (e.type === 'node.failed' && payload<{ error: { code: string } }>(e).error.code === 'AO_BUDGET_EXCEEDED'),
        );
        expect(stop, 'a budget_exceeded run has the event that stopped it').toBeDefined();
        const after = events.filter((e) => e.seq > stop!.seq);
        // No call starts after the stop: no grant, no model request, no tool call.
        const started = after.filter((e) => e.type === 'budget.granted' || e.type === 'llm.request' || e.type === 'tool.call');
        expect(
          started.map((e) => `${e.seq} ${e.type} ${e.from}`),
          `after stop #${stop!.seq} (${stop!.type})`,
        ).toEqual([]);
        // Settle a moment: still nothing after run.finished, and no actor of the run alive.
        await sleep(5);
        expect((await allEvents(h.store, run.id)).length).toBe(events.length);
        expect(h.engine.liveActors(run.id)).toBe(0);
      }),
      { seed: SEED, numRuns: NUM_RUNS, endOnFailure: true },
    );
    expect(llm.overGrant).toBe(0);
  });
  it(`a run whose uninterrupted usage is at most 90% of its tokens and tools limits is never stopped by them (seed ${SEED})`, async () => {
    const free = { runs: 0, waited: 0 };
    await fc.assert(
      fc.asyncProperty(caseArb, fc.nat(), async (c, salt) => {
        // Uninterrupted: the same graph without limits.
        const nodes = c.nodes.map((n) => ({ ...n, sub: undefined }));
        const open = buildGraph({ nodes, tokens: undefined, tools: undefined, perTool: {} });
        h.engine.register(open.builder);
        const first = await h.engine.waitForRun((await h.engine.startRun({ graph: open.name, input: { salt } })).id, 30_000);
        expect(first.status).toBe('succeeded');
        const used = await allEvents(h.store, first.id);
        const tokens = used.filter((e) => e.type === 'budget.settle').reduce((n, e) => n + payload<{ tokens: number }>(e).tokens, 0);
        const tools = used.filter((e) => e.type === 'tool.result').length;
        // Limits it uses at most 90% of (and at least 10 times the useful minimum of output: 160 tokens).
        const limits = { nodes, tokens: Math.max(160, Math.ceil(tokens / 0.9)), tools: tools ? Math.ceil(tools / 0.9) : undefined, perTool: {} };
        const tight = buildGraph(limits);
        h.engine.register(tight.builder);
        const run = await h.engine.startRun({ graph: tight.name, input: { salt } });
        const done = await h.engine.waitForRun(run.id, 30_000);
        const events = await allEvents(h.store, run.id);
        free.runs += 1;
        if (events.some((e) => e.type === 'budget.waiting')) free.waited += 1;
        expect(
          done.status,
          `${tokens} tokens and ${tools} tool calls uninterrupted, limits ${limits.tokens} / ${limits.tools}: ${JSON.stringify(done.error)}`,
        ).toBe('succeeded');
        expect(events.filter((e) => e.type === 'budget.refused')).toEqual([]);
      }),
      { seed: SEED, numRuns: 20, endOnFailure: true },
    );
    console.log(`[budget-property] 90% property: ${free.runs} runs, ${free.waited} of them waited for calls in flight`);
  });
});
