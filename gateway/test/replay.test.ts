import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineTool, loadConfig, OfflineLlm, webSearch } from '@ao/runtime';
import type { Envelope, LlmPort } from '@ao/runtime';
import { createTestDatabase, postgresAvailable } from '@ao/runtime/testing';
import { buildApp, startRuntime } from '../src/mod.js';

/** A web_search with the built-in's schema whose results say which implementation produced them. */
function searchTool(version: string, calls: string[]) {
  return defineTool({
    name: 'web_search',
    description: webSearch.description,
    effect: 'read',
    input: z.object({ query: z.string().min(1) }),
    handler: async ({ query }) => {
      calls.push(version);
      return { results: [{ title: `${query} (${version})`, url: `https://example.invalid/${version}`, snippet: `found by ${version}` }] };
    },
  });
}

/** The offline model, counting its calls per node (from the system prompt's node line). */
function countingLlm(): LlmPort & { calls: number } {
  const inner = new OfflineLlm();
  const llm = {
    provider: inner.provider,
    calls: 0,
    complete(req: Parameters<LlmPort['complete']>[0], signal?: AbortSignal) {
      llm.calls += 1;
      return inner.complete(req, signal);
    },
  };
  return llm;
}

const pg = await postgresAvailable();

describe.each([
  ['pglite', true],
  ['postgres', pg],
] as const)('replay through the gateway (%s)', (kind, available) => {
  let dir: string;
  let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ao-replay-'));
    if (kind === 'postgres' && available) db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  /** One gateway process's lifetime: its tools and model, on the same store as the others. */
  async function gateway(version: string, calls: string[]) {
    const config = loadConfig({ AO_DATA_DIR: dir, ...(db ? { DATABASE_URL: db.url } : {}), AO_NODE_ID: `gw-${version}` });
    const llm = countingLlm();
    const rt = await startRuntime(config, { llm, tools: [searchTool(version, calls)] });
    const app = await buildApp(rt.engine, { inspectorDir: false });
    const req = async (method: 'GET' | 'POST', url: string, payload?: object) => {
      const res = await app.inject({ method, url, ...(payload ? { payload } : {}) });
      return { status: res.statusCode, body: res.json() as Record<string, unknown> & { error?: { code: string; field?: string } } };
    };
    return {
      llm,
      req,
      async waitFor(id: string) {
        await rt.engine.waitForRun(id, 30_000);
        return (await req('GET', `/runs/${id}`)).body as {
          id: string;
          status: string;
          output: unknown;
          replay: { of: string; fromStep: number; divergence: unknown } | null;
        };
      },
      async events(id: string) {
        return ((await req('GET', `/runs/${id}/events?limit=1000`)).body as unknown as { events: Envelope[] }).events;
      },
      close: async () => {
        await app.close();
        await rt.close();
      },
    };
  }

  it.skipIf(!available)(
    "the seed's story: web_search changes, a replay from the step before it ran shows the new results and re-executes nothing before it",
    async () => {
      const v1Calls: string[] = [];
      const v2Calls: string[] = [];
      const first = await gateway('v1', v1Calls);
      const started = await first.req('POST', '/runs', { graph: 'research-swarm', input: { topic: 'durable agents' } });
      expect(started.status).toBe(202);
      const original = await first.waitFor(started.body.id as string);
      expect(original.status).toBe('succeeded');
      const searches = v1Calls.length;
      expect(searches).toBeGreaterThan(0);
      const checkpoints = ((await first.req('GET', `/runs/${original.id}/checkpoints`)).body as { checkpoints: Array<{ step: number; node: string | null }> })
        .checkpoints;
      // The step at which `plan` finished and `search` was started: web_search has not run yet.
      const before = checkpoints.find((c) => c.node === 'plan')!.step;
      await first.close();

      // The tool's implementation changes (a deploy), then someone replays.
      const second = await gateway('v2', v2Calls);
      try {
        const res = await second.req('POST', `/runs/${original.id}/replay`, { fromStep: before });
        expect(res.status).toBe(202);
        expect(res.body).toMatchObject({ replayOf: original.id, replay: { of: original.id, fromStep: before, mode: 'live', divergence: null } });
        const replay = await second.waitFor(res.body.id as string);
        expect(replay.status).toBe('succeeded');
        // The new implementation ran, the old one was not called again.
        expect(v2Calls.length).toBe(searches);
        expect(v1Calls.length).toBe(searches);
        const events = await second.events(replay.id);
        expect(events[0]).toMatchObject({ seq: 1, type: 'run.replayed', payload: { of: original.id, fromStep: before } });
        const results = events.filter((e) => e.type === 'tool.result').map((e) => JSON.stringify(e.payload));
        expect(results.length).toBe(searches);
        for (const r of results) expect(r).toContain('found by v2');
        // Nothing before the step ran again: plan made no model call, and no plan event is in the replay's log.
        expect(events.some((e) => e.from === 'supervisor/plan' || e.to === 'supervisor/plan')).toBe(false);
        expect(second.llm.calls).toBe(events.filter((e) => e.type === 'llm.request').length);
        // The comparison names where they part: search's results, and the outputs that follow.
        const diff = (await second.req('GET', `/runs/${original.id}/diff/${replay.id}`)).body as {
          identical: boolean;
          first: { actor: string; diff: string[] };
          nodes: Array<{ node: string }>;
        };
        expect(diff.identical).toBe(false);
        expect(diff.first.actor).toBe('supervisor/search');
        expect(diff.first.diff.join('\n')).toContain('v2');
        expect(diff.nodes.map((n) => n.node)).toContain('search');
        expect(diff.nodes.map((n) => n.node)).not.toContain('plan');

        // A recorded replay of the original from the start reproduces it: nothing is called at all.
        const callsBefore = [v2Calls.length, second.llm.calls];
        const rec = await second.req('POST', `/runs/${original.id}/replay`, { fromStep: 0, mode: 'recorded' });
        const recorded = await second.waitFor(rec.body.id as string);
        expect(recorded.status).toBe('succeeded');
        expect(recorded.output).toEqual(original.output);
        expect([v2Calls.length, second.llm.calls]).toEqual(callsBefore);
        const same = (await second.req('GET', `/runs/${original.id}/diff/${recorded.id}`)).body;
        expect(same).toMatchObject({ identical: true, first: null, nodes: [] });
      } finally {
        await second.close();
      }
    },
    60_000,
  );

  it.skipIf(!available)('refuses bad replay requests with a code: unknown run, bad body, step out of range', async () => {
    const g = await gateway('v1', []);
    try {
      const run = await g.waitFor((await g.req('POST', '/runs', { graph: 'triage', input: { intent: 'question' } })).body.id as string);
      const last = ((await g.req('GET', `/runs/${run.id}/checkpoints`)).body as { checkpoints: Array<{ step: number }> }).checkpoints.at(-1)!.step;
      const cases: Array<[string, object, number, string, string?]> = [
        [`/runs/nope/replay`, { fromStep: 1 }, 404, 'AO_RUN_NOT_FOUND'],
        [`/runs/${run.id}/replay`, { fromStep: last + 3 }, 400, 'AO_REPLAY_STEP_OUT_OF_RANGE', 'fromStep'],
        [`/runs/${run.id}/replay`, { fromStep: -1 }, 400, 'AO_VALIDATION', 'fromStep'],
        [`/runs/${run.id}/replay`, { fromStep: 1, mode: 'sometimes' }, 400, 'AO_VALIDATION', 'mode'],
        [`/runs/${run.id}/replay`, { fromStep: 1, extra: true }, 400, 'AO_VALIDATION'],
        [
          `/runs/${run.id}/replay`,
          { fromStep: 1, overrides: { nodes: { ghost: { instructions: 'x' } } } },
          400,
          'AO_REPLAY_INCOMPATIBLE',
          'overrides.nodes.ghost',
        ],
        [`/runs/${run.id}/replay`, { fromStep: 1, overrides: { budget: { tokens: -5 } } }, 400, 'AO_VALIDATION', 'overrides.budget'],
      ];
      for (const [url, body, status, code, field] of cases) {
        const res = await g.req('POST', url, body);
        expect(res.status, `${url} ${JSON.stringify(body)}`).toBe(status);
        expect(res.body.error?.code, `${url} ${JSON.stringify(body)}`).toBe(code);
        if (field) expect(res.body.error?.field).toBe(field);
      }
      expect((await g.req('GET', `/runs/${run.id}/diff/nope`)).body.error?.code).toBe('AO_RUN_NOT_FOUND');
    } finally {
      await g.close();
    }
  });
});
