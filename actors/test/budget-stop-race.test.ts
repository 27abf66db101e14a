import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import type { Envelope, LlmPort, LlmRequest, LlmResponse, RunRecord } from '@ao/runtime';
import { captureLog, logLine } from '@ao/runtime/testing';
import type { LogCapture } from '@ao/runtime/testing';
import { allEvents, gate, makeEngine, sleep } from './harness.js';

/**
 * A swarm of two branches whose budget fits one tool call: branch A's first model call is granted
 * and held open (gated); branch B calls `noop` (the one tool call), and its second `noop` is
 * refused, which stops the run `budget_exceeded` (a model call in flight holds no tool calls, so
 * the budget does not wait for A's). The held call is let go at the very moment the run's final
 * event is published: the branch actor has been stopped by then, so nothing it does may reach
 * the log any more.
 */
const race = graph('budget-stop-race')
  .node('fan', { agent: 'swarm', concurrency: 2, tools: ['noop'], maxTurns: 3 })
  .budget({ tools: 1 }) as GraphBuilder<unknown>;

describe('a model call in flight when a budget stop ends the run', () => {
  let h: Awaited<ReturnType<typeof makeEngine>>;
  let held = gate<void>();
  let calls = 0;
  const llm: LlmPort = {
    provider: 'gated',
    async complete(req: LlmRequest): Promise<LlmResponse> {
      calls += 1;
      const first = calls === 1;
      if (first) await held.promise;
      // Every answer asks for a tool: had the held branch gone on, its next step would be a new call.
      return req.tools
        ? {
            model: 'm',
            message: { content: '', toolCalls: [{ id: 'c1', name: 'noop', arguments: {} }] },
            usage: { inputTokens: 1, outputTokens: 1 },
            finishReason: 'tool_calls',
          }
        : { model: 'm', message: { content: 'done', toolCalls: [] }, usage: { inputTokens: 1, outputTokens: 1 }, finishReason: 'stop' };
    },
  };
  const errors: string[] = [];
  let logs: LogCapture | undefined;

  beforeAll(async () => {
    // Collected, not printed: the second test provokes the crash log on purpose.
    logs = captureLog({
      forward: (r) => {
        if (r.level !== 'error' && r.level !== 'warn') return true;
        const line = logLine(r);
        errors.push(line);
        return !/could not report the crash of .* is closed/s.test(line);
      },
    });
    h = await makeEngine('pglite', { llm, graphs: [race] });
  });
  afterAll(async () => {
    logs?.restore();
    await h.close();
  });

  async function runRace(): Promise<{ done: RunRecord; events: Envelope[]; errors: string[] }> {
    calls = 0;
    held = gate<void>();
    errors.length = 0;
    const run = await h.engine.startRun({ graph: 'budget-stop-race' });
    const sub = h.engine.bus.subscribe(run.id, (e) => {
      if (e.type === 'run.finished') held.open();
    });
    const done = await h.engine.waitForRun(run.id, 10_000);
    await sleep(50);
    sub.unsubscribe();
    return { done, events: await allEvents(h.store, run.id), errors: [...errors] };
  }

  it('ends the run budget_exceeded, and the stopped branch starts no new call after run.finished', async () => {
    const { done, events } = await runRace();
    expect(done.status).toBe('budget_exceeded');
    expect(done.error).toMatchObject({ code: 'AO_BUDGET_EXCEEDED', details: { limit: 'tools', value: 1 } });
    const fin = events.find((e) => e.type === 'run.finished')!;
    const started = events.filter((e) => e.seq > fin.seq && ['budget.request', 'budget.granted', 'llm.request', 'tool.call'].includes(e.type));
    expect(started).toEqual([]);
    expect(h.engine.liveActors(done.id)).toBe(0);
  });

  // BUG (actors/src/pipeline + swarm branch, rooted in runtime/src/actor-system/actor-system.ts
  // RefImpl.stop): stopping an actor marks it stopped at once, but its behaviour's onStop, which
  // aborts its in-flight work, only runs when nact calls afterStop on a later setImmediate. The
  // supervisor stops the children, commits run.finished, and the host closes the journal after
  // flushing that commit, all within microtasks; a model call that completes in that window is
  // not aborted, so its llm.response and budget.settle are committed AFTER run.finished, and the
  // branch then fails writing its next step to the closed journal and crashes ("could not report
  // the crash of supervisor/fan/branch-1: ... journal ... is closed"). Deterministic here.
  // Suggested fix: abort synchronously on stop (RefImpl.stop() calling the behaviour's stop hook
  // before nact.stop, with onStop made idempotent), and/or fence the journal against every actor
  // but the supervisor as soon as a `finish` decision is taken.
  it('writes nothing after run.finished and does not crash the stopped branch (regression: the abort came a tick late)', async () => {
    const { events, errors } = await runRace();
    expect(events.at(-1)!.type).toBe('run.finished');
    expect(errors.filter((e) => e.includes('crash'))).toEqual([]);
  });
});
