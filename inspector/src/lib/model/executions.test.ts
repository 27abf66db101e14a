import { describe, expect, it } from 'vitest';
import type { Envelope } from '../api/types';
import { executions, executionsOf } from './executions';
import { timeline } from './timeline';

let seq = 0;
const env = (type: string, payload: unknown, from: string, to: string, ms: number): Envelope => ({
  id: `id-${++seq}`,
  runId: 'r',
  seq,
  from,
  to,
  type,
  payload,
  causationId: null,
  trace: null,
  time: new Date(Date.UTC(2026, 0, 1) + ms).toISOString(),
});

/** A search node that calls the model, a tool, the model again; then a swarm node of two branches. */
const log = (): Envelope[] => {
  seq = 0;
  const s = 'supervisor/search';
  return [
    env('run.started', {}, 'gateway', 'supervisor', 0),
    env('node.start', { node: 'search', iteration: 1, attempt: 1 }, 'supervisor', s, 10),
    env('budget.request', { kind: 'llm', key: `${s}/1`, node: 'search', actor: s, promptTokens: 10, maxTokens: 100 }, s, 'supervisor/budget', 11),
    env('budget.granted', { key: `${s}/1`, reservation: { node: 'search', tokens: 110, usd: 0 } }, 'supervisor/budget', s, 12),
    env(
      'llm.request',
      {
        key: `${s}/1`,
        profile: 'default',
        messages: [
          { role: 'system', content: 'Search the web.' },
          { role: 'user', content: 'durable execution?' },
        ],
      },
      s,
      'llm/default',
      13,
    ),
    env('llm.response', { key: `${s}/1`, content: '', toolCalls: [{ id: 'c1', name: 'web_search', arguments: { query: 'durable' } }] }, 'llm/default', s, 40),
    env('budget.settle', { key: `${s}/1`, tokens: 50, usd: 0.01 }, s, 'supervisor/budget', 41),
    env('budget.request', { kind: 'tool', key: `${s}/2`, node: 'search', actor: s, tool: 'web_search' }, s, 'supervisor/budget', 42),
    env('budget.granted', { key: `${s}/2`, reservation: { node: 'search', tokens: 0, usd: 0, tool: 'web_search' } }, 'supervisor/budget', s, 43),
    env('tool.call', { key: `${s}/2`, name: 'web_search', args: { query: 'durable' } }, s, 'tool/web_search', 44),
    env('tool.result', { key: `${s}/2`, name: 'web_search', ok: true, result: { results: [1, 2] } }, 'tool/web_search', s, 60),
    env('budget.settle', { key: `${s}/2`, tokens: 0, usd: 0, tool: 'web_search' }, s, 'supervisor/budget', 61),
    env('node.failed', { node: 'search', iteration: 1, attempt: 1, error: { code: 'AO_TOOL_FAILED', message: 'flaky' } }, s, 'supervisor', 62),
    env(
      'node.retry_scheduled',
      { node: 'search', attempt: 2, delayMs: 100, error: { code: 'AO_TOOL_FAILED', message: 'flaky' } },
      'supervisor',
      'supervisor',
      63,
    ),
    env('node.start', { node: 'search', iteration: 1, attempt: 2 }, 'supervisor', `${s}@1.2`, 170),
    env('node.completed', { node: 'search', iteration: 1, attempt: 2, output: { text: 'found' } }, `${s}@1.2`, 'supervisor', 180),
    env('node.start', { node: 'analyse', iteration: 1, attempt: 1 }, 'supervisor', 'supervisor/analyse', 190),
    env('branch.start', { node: 'analyse', branch: 1, of: 2, attempt: 1 }, 'supervisor/analyse', 'supervisor/analyse/branch-1', 191),
    env('branch.start', { node: 'analyse', branch: 2, of: 2, attempt: 1 }, 'supervisor/analyse', 'supervisor/analyse/branch-2', 191),
    env(
      'llm.request',
      { key: 'supervisor/analyse/branch-2/1', messages: [{ role: 'user', content: 'angle 2' }] },
      'supervisor/analyse/branch-2',
      'llm/default',
      192,
    ),
    env(
      'llm.failed',
      { key: 'supervisor/analyse/branch-2/1', error: { code: 'AO_LLM_FAILED', message: 'rate limited' } },
      'llm/default',
      'supervisor/analyse/branch-2',
      200,
    ),
    env('branch.completed', { node: 'analyse', branch: 1, output: { text: 'one' } }, 'supervisor/analyse/branch-1', 'supervisor/analyse', 210),
    env('branch.failed', { node: 'analyse', branch: 2, error: { message: 'rate limited' } }, 'supervisor/analyse/branch-2', 'supervisor/analyse', 211),
    env('node.completed', { node: 'analyse', iteration: 1, attempt: 1, output: { text: 'both' } }, 'supervisor/analyse', 'supervisor', 212),
    env('run.finished', { status: 'succeeded' }, 'supervisor', 'supervisor', 220),
  ];
};

describe('executions', () => {
  it('lists each execution of a node with its calls, answers, tool results, cost, retries and budget decisions', () => {
    const [first, second] = executionsOf(log(), 'search');
    expect(first).toMatchObject({
      actor: 'supervisor/search',
      iteration: 1,
      attempt: 1,
      status: 'failed',
      error: { code: 'AO_TOOL_FAILED', message: 'flaky' },
      tokens: 50,
      usd: 0.01,
    });
    expect(first!.retries).toEqual([{ attempt: 2, delayMs: 100, error: { code: 'AO_TOOL_FAILED', message: 'flaky' } }]);
    const [llm, tool] = first!.calls;
    expect(llm).toMatchObject({
      kind: 'llm',
      name: 'default',
      tokens: 50,
      usd: 0.01,
      answer: { text: '', toolCalls: [{ id: 'c1', name: 'web_search', arguments: { query: 'durable' } }] },
    });
    expect(llm!.messages!.map((m) => m.content)).toEqual(['Search the web.', 'durable execution?']);
    expect(llm!.budget.map((d) => d.type)).toEqual(['budget.request', 'budget.granted', 'budget.settle']);
    expect(llm!.budget[0]!.text).toBe('asked for 110 tokens (10 prompt + 100 max answer)');
    expect(tool).toMatchObject({ kind: 'tool', name: 'web_search', args: { query: 'durable' }, ok: true, result: { results: [1, 2] } });
    expect(tool!.budget.map((d) => d.text)).toEqual(['asked for 1 web_search call', 'granted: 1 web_search call reserved', 'settled: 1 web_search call']);
    expect(second).toMatchObject({ actor: 'supervisor/search@1.2', attempt: 2, status: 'succeeded', output: { text: 'found' }, calls: [] });
  });

  it('tells the branches of a swarm node apart, each with its own calls and failures', () => {
    const xs = executionsOf(log(), 'analyse');
    expect(xs.map((x) => [x.actor, x.branch, x.status])).toEqual([
      ['supervisor/analyse', undefined, 'succeeded'],
      ['supervisor/analyse/branch-1', 1, 'succeeded'],
      ['supervisor/analyse/branch-2', 2, 'failed'],
    ]);
    expect(xs[2]!.calls[0]).toMatchObject({ kind: 'llm', error: { code: 'AO_LLM_FAILED', message: 'rate limited' } });
    expect(executions(log())).toHaveLength(5);
  });
});

describe('timeline', () => {
  it('has one row per actor, a bar per execution and per call, placed in time', () => {
    const t = timeline(log());
    expect(t.span).toBe(220);
    expect(t.rows.map((r) => r.label)).toEqual(['search', 'analyse', 'analyse · branch-1', 'analyse · branch-2']);
    const search = t.rows[0]!;
    expect(search.bars.map((b) => [b.kind, b.start, b.end])).toEqual([
      ['node', 10, 62],
      ['llm', 13, 40],
      ['tool', 44, 60],
      ['node', 170, 180],
    ]);
    expect(search.tokens).toBe(50);
    expect(t.rows[3]!.bars.map((b) => [b.kind, b.status])).toEqual([
      ['node', 'failed'],
      ['llm', 'failed'],
    ]);
  });
});
