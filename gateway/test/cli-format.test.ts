import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { draftCritique, graph, researchSwarm, toGraphDef, triage } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { emptyUsage } from '@ao/runtime';
import type { RunSummaryT } from '../src/cli/client.js';
import { ago, duration, edgeLines, graphDetailLines, graphsList, runLines, runsTable, schemaFields, valueLines } from '../src/cli/format.js';
import { graphDetail, graphView } from '../src/http/views.js';
import type { RunViewT } from '../src/http/views.js';

const view = (g: GraphBuilder<unknown>) => graphView(toGraphDef(g));
const detail = (g: GraphBuilder<unknown>) => graphDetail(toGraphDef(g));
const NOW = Date.parse('2026-05-01T12:00:00.000Z');

const summary = (over: Partial<RunSummaryT> = {}): RunSummaryT => ({
  id: '645f20cd-0000-4000-8000-000000000001',
  graph: 'triage',
  graphVersion: 'ae6df78805c0dbe0',
  status: 'succeeded',
  usage: { ...emptyUsage(), totalTokens: 1832 },
  error: null,
  createdAt: '2026-05-01T11:55:00.000Z',
  startedAt: '2026-05-01T11:55:00.100Z',
  finishedAt: '2026-05-01T11:55:01.350Z',
  replayOf: null,
  tenant: 'default',
  waits: [],
  ...over,
});

const run = (over: Partial<RunViewT> = {}): RunViewT => ({
  ...summary(),
  usage: { ...emptyUsage(), totalTokens: 832, llmCalls: 3, toolCalls: 1, perTool: { stripe_refund: 1 } },
  input: { intent: 'refund' },
  output: { refund: { text: 'Refunded ch_1.', tools: [{ name: 'stripe_refund', ok: true, args: { chargeId: 'ch_1' }, result: { refundId: 're_1' } }] } },
  budget: { tokens: 8000, tools: 10 },
  // Stored in the order nodes finished, not the graph's.
  nodes: {
    escalate: { status: 'skipped', iteration: 0, attempt: 0 },
    refund: { status: 'succeeded', iteration: 1, attempt: 2, startedAt: '2026-05-01T11:55:00.400Z', finishedAt: '2026-05-01T11:55:01.300Z' },
    classify: { status: 'succeeded', iteration: 1, attempt: 1, startedAt: '2026-05-01T11:55:00.100Z', finishedAt: '2026-05-01T11:55:00.350Z' },
  },
  traceId: null,
  owner: null,
  leaseExpiresAt: null,
  cancelRequested: false,
  lastSeq: 40,
  updatedAt: '2026-05-01T11:55:01.350Z',
  replay: null,
  budgetUsage: { limits: { tokens: 8000, tools: 10 }, used: { tokens: 832, tools: 1, usd: 0, perTool: {} }, reserved: { tokens: 0, tools: 0, usd: 0 } },
  ...over,
});

describe('ao runs: a table with a header row and relative times', () => {
  it('puts a header over aligned columns, numbers right-aligned, the age relative to now', () => {
    const lines = runsTable(
      [
        summary(),
        summary({
          id: 'b',
          graph: 'research-swarm',
          status: 'running',
          startedAt: '2026-05-01T09:00:00.000Z',
          finishedAt: null,
          createdAt: '2026-05-01T09:00:00.000Z',
          usage: { ...emptyUsage(), totalTokens: 12 },
        }),
      ],
      NOW,
    );
    expect(lines).toEqual([
      'ID                                    GRAPH           STATUS     TOKENS    TOOK  CREATED',
      '645f20cd-0000-4000-8000-000000000001  triage          succeeded   1,832   1.25s  5m ago',
      'b                                     research-swarm  running        12  3h 00m  3h ago',
    ]);
  });

  it('says so when there is no run, and shows a run not started yet without a duration', () => {
    expect(runsTable([], NOW)).toEqual(['no runs']);
    expect(
      runsTable([summary({ status: 'pending', usage: emptyUsage(), startedAt: null, finishedAt: null, createdAt: new Date(NOW).toISOString() })], NOW)[1],
    ).toMatch(/pending\s+0\s+-\s+just now$/);
  });

  it('writes durations and ages at a useful precision', () => {
    expect([duration(50), duration(12_340), duration(245_000), duration(7_800_000)]).toEqual(['0.05s', '12.3s', '4m 05s', '2h 10m']);
    expect([ago('2026-05-01T12:00:05.000Z', NOW), ago('2026-05-01T11:59:18.000Z', NOW), ago('2026-04-28T12:00:00.000Z', NOW)]).toEqual([
      'just now',
      '42s ago',
      '3d ago',
    ]);
  });
});

describe('ao graphs: graphs drawn edge by edge', () => {
  it('draws a branching graph as its branches, each conditional edge marked, not as one chain', () => {
    expect(edgeLines(view(triage))).toEqual(['classify -?-> refund', 'classify -?-> escalate']);
  });

  it('marks the back edge of a loop and keeps plain edges plain', () => {
    expect(edgeLines(view(draftCritique as GraphBuilder<unknown>))).toEqual([
      'outline  ---> draft',
      'draft    ---> critique',
      'critique -?-> draft  (loops back)',
      'critique -?-> publish',
    ]);
    expect(edgeLines(view(researchSwarm))).toEqual(['plan    ---> search', 'search  ---> analyse', 'analyse ---> summarise']);
  });

  it('draws a join as the edges into it, the last one naming what it waits for, and gives a node without edges a line', () => {
    const diamond = graph('diamond')
      .node('a', { agent: 'pipeline' })
      .node('b', { agent: 'pipeline' })
      .node('c', { agent: 'pipeline' })
      .node('d', { agent: 'pipeline' })
      .edge('a', 'b')
      .edge('a', 'c')
      .edge('b', 'd')
      .edge('c', 'd');
    expect(edgeLines(view(diamond))).toEqual(['a ---> b', 'a ---> c', 'b ---> d', 'c ---> d  (d joins b, c)']);
    expect(graphDetailLines(detail(diamond))).toContain('  d  pipeline  default  join of 2');
    expect(edgeLines(view(graph('solo').node('only', { agent: 'pipeline' })))).toEqual(['only (no edges)']);
  });

  it('lists every graph with its version, node count, budget and edges', () => {
    const lines = graphsList([view(triage)]);
    expect(lines[0]).toMatch(/^triage {2}version [0-9a-f]{16} {2}3 nodes {2}budget: 8,000 tokens, 10 tool calls, 60 s wall clock, stripe_refund ×1$/);
    expect(lines.slice(1, 3)).toEqual(['  classify -?-> refund', '  classify -?-> escalate']);
  });
});

describe('ao graphs <name>: nodes, edges and the input fields', () => {
  it('lists the input fields of draft-critique: brief is a required string', () => {
    const lines = graphDetailLines(detail(draftCritique as GraphBuilder<unknown>));
    expect(lines.slice(lines.indexOf('input'))).toEqual(['input', '  brief  string, required, min length 1']);
    expect(lines).toContain('  outline   supervisor  default  entry');
  });

  it('describes types, optional fields, defaults, enums, arrays and nested objects', () => {
    const g = graph('typed', {
      input: z.object({
        topic: z.string().describe('what to research'),
        depth: z.number().int().min(1).max(5).default(2),
        tone: z.enum(['plain', 'formal']).optional(),
        tags: z.array(z.string()),
        owner: z.object({ email: z.string().max(200).regex(/@/) }),
      }),
    }).node('a', { agent: 'pipeline' });
    expect(schemaFields(detail(g as GraphBuilder<unknown>).inputSchema)).toEqual([
      'topic  string, required  — what to research',
      'depth  integer, optional, >= 1, <= 5, default 2',
      'tone   "plain" | "formal", optional',
      'tags   string[], required',
      'owner  object, required',
      '  email  string, required, max length 200, matches /@/',
    ]);
  });

  it('says a graph without an input schema takes any JSON value', () => {
    expect(schemaFields(null, '  ')).toEqual(['  any JSON value (the graph has no input schema)']);
  });
});

describe('ao show: a readable summary of a run', () => {
  it('gives status, graph, times, usage against limits, nodes in graph order, input and output', () => {
    expect(runLines(run(), NOW, ['classify', 'refund', 'escalate'])).toEqual([
      'run 645f20cd-0000-4000-8000-000000000001',
      '  status    succeeded',
      '  graph     triage (version ae6df78805c0dbe0)',
      '  created   2026-05-01T11:55:00.000Z (5m ago)',
      '  took      1.25s, finished 2026-05-01T11:55:01.350Z',
      '  usage     832 / 8,000 tokens, 3 LLM calls, 1 / 10 tool calls',
      '',
      'nodes',
      '  classify  succeeded  0.25s',
      '  refund    succeeded  0.90s  attempt 2',
      '  escalate  skipped',
      '',
      'input',
      '  intent: refund',
      '',
      'output',
      '  refund:',
      '    Refunded ch_1.',
      '    tool stripe_refund({"chargeId":"ch_1"}) -> {"refundId":"re_1"}',
    ]);
  });

  it('shows why a run failed, what it waits for, and that it replays another; a running one counts time so far', () => {
    const failed = runLines(run({ status: 'failed', error: { code: 'AO_TOOL_FAILED', message: 'stripe said no', node: 'refund' }, output: null }), NOW);
    expect(failed).toContain('  error     AO_TOOL_FAILED: stripe said no (node refund)');
    expect(failed).not.toContain('output');
    const waiting = runLines(
      run({
        status: 'waiting',
        finishedAt: null,
        replay: { of: 'orig-1', fromStep: 3, mode: 'live', overrides: { input: {} }, baseSeq: 10, originalVersion: 'v', divergence: null },
        waits: [{ id: 'w1', node: 'refund', kind: 'approval', prompt: 'Refund 10 EUR?', schema: {}, since: '2026-05-01T11:58:00.000Z', countWallClock: false }],
      }),
      NOW,
    );
    expect(waiting).toContain('  replays   orig-1 from step 3 (live, fork)');
    expect(waiting).toContain('  waits     refund: Refund 10 EUR? (approval, wait w1, since 2026-05-01T11:58:00.000Z)');
    expect(waiting).toContain('  took      5m 00s so far');
  });

  it('gives usage against every limit (soft limits, per tool) and the wall clock as the budget counts it, sleeps for a person left out', () => {
    const limits = { tokens: 8000, tools: 10, wallClockSec: 60, perTool: { stripe_refund: 1 }, soft: { tokens: 6000 } };
    // The succeeded triage-with-approval run of issue 25: 70.7 s from start to end, 70 s of it asleep for a person.
    const lines = runLines(
      run({
        startedAt: '2026-05-01T11:55:00.000Z',
        finishedAt: '2026-05-01T11:56:10.700Z',
        budget: limits,
        budgetUsage: {
          limits,
          used: { tokens: 832, tools: 1, usd: 0, perTool: { stripe_refund: 1 } },
          reserved: { tokens: 0, tools: 0, usd: 0 },
          wallClock: { usedMs: 700, pausedMs: 70_000, paused: false },
        },
      }),
      NOW,
    );
    expect(lines).toContain('  took      1m 11s, finished 2026-05-01T11:56:10.700Z');
    expect(lines).toContain('  usage     832 / 8,000 tokens (soft 6,000), 3 LLM calls, 1 / 10 tool calls, 1 / 1 stripe_refund calls');
    expect(lines).toContain('  clock     0.70s / 1m 00s of the wall-clock budget, 1m 10s asleep for a person not counted');
    // Asleep now: the budget's clock stands still.
    const asleep = runLines(
      run({
        status: 'waiting',
        finishedAt: null,
        budget: limits,
        budgetUsage: {
          limits,
          used: { tokens: 118, tools: 0, usd: 0, perTool: {} },
          reserved: { tokens: 0, tools: 0, usd: 0 },
          wallClock: { usedMs: 300, pausedMs: 4000, paused: true },
        },
      }),
      NOW,
    );
    expect(asleep).toContain('  clock     0.30s / 1m 00s of the wall-clock budget, 4.00s asleep for a person not counted (stopped while it sleeps)');
    // No wall-clock limit, or no figure (a replay): no clock line.
    expect(runLines(run(), NOW).some((l) => l.startsWith('  clock'))).toBe(false);
  });

  it('reads the run budget as the limits when the usage report is absent', () => {
    expect(runLines(run({ budgetUsage: null }), NOW)).toContain('  usage     832 / 8,000 tokens, 3 LLM calls, 1 / 10 tool calls');
  });

  it('prints text as text, short fields on one line, and other values as indented JSON', () => {
    expect(valueLines('line 1\nline 2', '  ')).toEqual(['  line 1', '  line 2']);
    expect(valueLines({ a: 1, b: 'x', c: { d: [1] } }, '')).toEqual(['a: 1', 'b: x', 'c:', '  {', '    "d": [', '      1', '    ]', '  }']);
    expect(valueLines([1, 2], '')).toEqual(['[', '  1,', '  2', ']']);
    expect(valueLines(null, '  ')).toEqual(['  null']);
  });
});
