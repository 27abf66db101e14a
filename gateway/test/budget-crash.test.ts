import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startServer } from './process.js';
import { settle } from './runs.js';

/**
 * Budgets across crashes (issue 20): a real `ao serve` is SIGKILLed at a different moment of each
 * trial while research-swarms run under token limits, then restarted. Whatever was reserved, waiting
 * or in flight at the kill, no run spends past its limit; one whose uninterrupted usage fits its
 * limit with room to spare still succeeds; one whose limit is too small ends budget_exceeded.
 */
const TRIALS = Number(process.env.AO_BUDGET_CRASH_TRIALS ?? 4);
type Json = Record<string, unknown>;
interface Env {
  seq: number;
  type: string;
  time: string;
  payload: Json;
}
const get = async (url: string): Promise<Json> => (await fetch(url)).json() as Promise<Json>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('budgets across SIGKILL', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it(`never overspends, and a run with room to spare still succeeds, over ${TRIALS} kills (PGlite)`, { timeout: 600_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ao-budget-crash-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const base = { AO_DATA_DIR: join(dir, 'data'), AO_LLM_LATENCY_MS: '20' };
    const start = (url: string, tokens: number) =>
      fetch(`${url}/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ graph: 'research-swarm', input: { topic: `budgets ${tokens}` }, budget: { tokens } }),
      });
    /** Runs the kill caught before their end. */
    let interrupted = 0;
    for (let trial = 0; trial < TRIALS; trial++) {
      const victim = await startServer(base);
      cleanups.push(victim.stop);
      const posted = await Promise.all([start(victim.url, 3000), start(victim.url, 3200), start(victim.url, 1500)]);
      const ids = await Promise.all(posted.map(async (r) => ((await r.json()) as Json).id as string));
      // A different moment of the runs each trial (they take about a second uninterrupted).
      await sleep(60 + ((trial * 379) % 900));
      await victim.kill9();
      const killedAt = Date.now();
      const server = await startServer(base);
      cleanups.push(server.stop);
      const runs = await settle(server.url, ids, 90_000);
      for (const [i, run] of runs.entries()) {
        const limit = [3000, 3200, 1500][i]!;
        const label = `trial ${trial} run ${run.id} (tokens ${limit})`;
        const events = (await get(`${server.url}/runs/${run.id}/events?limit=1000`)).events as Env[];
        expect(
          events.map((e) => e.seq),
          label,
        ).toEqual(events.map((_, k) => k + 1));
        const settled = events.filter((e) => e.type === 'budget.settle').reduce((n, e) => n + (e.payload.tokens as number), 0);
        expect(settled, label).toBeLessThanOrEqual(limit);
        expect((run.usage as { totalTokens: number }).totalTokens, label).toBe(settled);
        if (Date.parse(events.at(-1)!.time) > killedAt) interrupted += 1;
        expect(run.status, `${label}: ${JSON.stringify(run.error)}`).toBe(limit === 1500 ? 'budget_exceeded' : 'succeeded');
      }
      await server.stop();
    }
    console.log(`[budget-crash] ${TRIALS} kills, ${TRIALS * 3} runs, ${interrupted} of them interrupted`);
    // Most kills land mid-run (a run takes about a second); the test proves nothing if none did.
    expect(interrupted).toBeGreaterThan(TRIALS);
  });
});
