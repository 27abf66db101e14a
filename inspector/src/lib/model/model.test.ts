import { describe, expect, it } from 'vitest';
import type { Envelope } from '../api/types';
import { baseFromCheckpoint, foldUpTo, gauges, RunFold } from './fold';
import { Lanes, MAX_BRANCH_LANES } from './lanes';
import { layeredLayout } from './layout';
import { answerForm, answerPayload, fieldOf, timeLeft } from './answer';

let seq = 0;
const env = (type: string, payload: unknown, from = 'supervisor', to = 'supervisor', time = '2026-01-01T00:00:00.000Z'): Envelope => ({
  id: `id-${++seq}`,
  runId: 'r',
  seq,
  from,
  to,
  type,
  payload,
  causationId: null,
  trace: null,
  time,
});

describe('RunFold', () => {
  it('follows node states through start, retry, completion, skips and loops', () => {
    const evs = [
      env('run.started', {}),
      env('node.start', { node: 'a', iteration: 1, attempt: 1 }),
      env('node.failed', { node: 'a', error: { code: 'X', message: 'boom' } }),
      env('node.retry_scheduled', { node: 'a', attempt: 2 }),
      env('node.start', { node: 'a', iteration: 1, attempt: 2 }),
      env('node.completed', { node: 'a' }),
      env('node.skipped', { node: 'b' }),
      env('loop.iterated', { from: 'c', to: 'a', iteration: 2, reset: ['a'] }),
      env('run.finished', { status: 'succeeded' }),
    ];
    const at = (n: number) => foldUpTo(evs, n, ['a', 'b']);
    expect(at(0).status).toBe('pending');
    expect(at(2).nodes.a).toMatchObject({ status: 'running', attempt: 1 });
    expect(at(3).nodes.a).toMatchObject({ status: 'failed', error: 'boom' });
    expect(at(4).nodes.a!.status).toBe('retrying');
    expect(at(6).nodes.a).toMatchObject({ status: 'succeeded', attempt: 2 });
    expect(at(7).nodes.b!.status).toBe('skipped');
    expect(at(8).nodes.a!.status).toBe('pending');
    expect(at(9).status).toBe('succeeded');
  });

  it('keeps the budget ledger like the budget actor: reservations until settled or released, settlements counted once', () => {
    const f = new RunFold(['s']);
    const grant = (key: string, tokens: number, tool?: string) =>
      env('budget.granted', { key, reservation: { node: 's', actor: 'supervisor/s', tokens, usd: 0, ...(tool ? { tool } : {}) } });
    f.apply(grant('k1', 500));
    f.apply(grant('k2', 0, 'web_search'));
    f.apply(grant('k3', 300));
    expect(f.reserved).toEqual({ tokens: 800, tools: 1, usd: 0, perTool: { web_search: 1 } });
    f.apply(env('budget.settle', { key: 'k1', tokens: 120, usd: 0 }));
    f.apply(env('budget.settle', { key: 'k1', tokens: 120, usd: 0 })); // a redelivery
    f.apply(env('budget.settle', { key: 'k2', tokens: 0, usd: 0, tool: 'web_search' }));
    f.apply(env('budget.release', { key: 'k3' }));
    expect(f.used).toEqual({ tokens: 120, tools: 1, usd: 0, perTool: { web_search: 1 } });
    expect(f.reserved).toEqual({ tokens: 0, tools: 0, usd: 0, perTool: {} });
    expect(f.nodes.s!.tokens).toBe(120);
  });

  it('counts calls waiting on a limit on its gauge until the budget decides them', () => {
    const f = new RunFold(['s']);
    f.apply(env('budget.granted', { key: 'k1', reservation: { node: 's', actor: 'supervisor/s', tokens: 900, usd: 0 } }));
    f.apply(
      env('budget.waiting', {
        key: 'k2',
        node: 's',
        actor: 'supervisor/s',
        limit: 'tokens',
        scope: 'run',
        value: 1000,
        used: 0,
        reserved: 900,
        inFlight: 1,
        asked: 116,
      }),
    );
    f.apply(
      env('budget.waiting', {
        key: 'k3',
        node: 's',
        actor: 'supervisor/s',
        limit: 'tokens',
        scope: 'run',
        value: 1000,
        used: 0,
        reserved: 900,
        inFlight: 1,
        asked: 116,
      }),
    );
    expect(gauges({ tokens: 1000, tools: 5 }, f).map((g) => [g.name, g.waiting])).toEqual([
      ['tokens', 2],
      ['tools', 0],
    ]);
    f.apply(env('budget.settle', { key: 'k1', tokens: 120, usd: 0 }));
    f.apply(env('budget.granted', { key: 'k2', reservation: { node: 's', actor: 'supervisor/s', tokens: 300, usd: 0 } }));
    f.apply(env('budget.refused', { key: 'k3', limit: 'tokens', scope: 'run', value: 1000, used: 120, stop: true }));
    expect(gauges({ tokens: 1000 }, f)[0]).toMatchObject({ used: 120, reserved: 300, waiting: 0 });
  });

  it("shows calls waiting for their provider's capacity (llm.throttled) until they are answered", () => {
    const f = new RunFold(['s']);
    const wait = (key: string) =>
      env('llm.throttled', { key, profile: 'default', tenant: 't', limit: 'requests', scope: 'tenant', waitMs: 400 }, 'llm/default', 'supervisor/s');
    f.apply(wait('supervisor/s/1'));
    f.apply(wait('supervisor/s/2'));
    expect([...f.throttled]).toEqual([
      ['supervisor/s/1', 'requests (tenant)'],
      ['supervisor/s/2', 'requests (tenant)'],
    ]);
    f.apply(env('llm.response', { key: 'supervisor/s/1' }, 'llm/default', 'supervisor/s'));
    f.apply(env('llm.failed', { key: 'supervisor/s/2' }, 'llm/default', 'supervisor/s'));
    expect(f.throttled.size).toBe(0);
    expect(f.throttledCalls).toBe(2);
  });

  it('gives a gauge per limit, the wall clock measured from run.started', () => {
    const f = foldUpTo(
      [
        env('run.started', {}, 'supervisor', 'supervisor', '2026-01-01T00:00:00.000Z'),
        env('node.start', { node: 'a', iteration: 1, attempt: 1 }, 'supervisor', 'supervisor', '2026-01-01T00:00:12.000Z'),
      ],
      2,
      ['a'],
    );
    const g = gauges({ tokens: 1000, tools: 5, wallClockSec: 60, perTool: { web_search: 2 } }, f);
    expect(g.map((x) => x.name)).toEqual(['tokens', 'tools', 'wallClockSec', 'perTool.web_search']);
    expect(g.find((x) => x.name === 'wallClockSec')!.used).toBe(12);
  });

  it('does not count time asleep for a person on the wall clock, unless a wait counts it (triage-with-approval read 71 s / 60 s)', () => {
    const t = (s: number) => `2026-01-01T00:${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}.000Z`;
    const wait = (countWallClock: boolean) => ({ id: 'w', node: 'a', kind: 'approval', prompt: 'ok?', schema: {}, since: t(5), countWallClock });
    const evs = (count: boolean) => [
      env('run.started', {}, 'supervisor', 'supervisor', t(0)),
      env('run.waiting', { waits: [wait(count)] }, 'supervisor', 'supervisor', t(5)),
      env('run.resumed', { pausedMs: 60_000, wallClockPaused: !count }, 'supervisor', 'supervisor', t(65)),
      env('run.finished', { status: 'succeeded' }, 'supervisor', 'supervisor', t(71)),
    ];
    const clock = (n: number, count = false, now?: number) => gauges({ wallClockSec: 60 }, foldUpTo(evs(count), n, ['a']), now)[0]!.used;
    expect(clock(4)).toBe(11);
    // Asleep: the clock stands still at 5 s, however late it is now.
    expect(clock(2, false, Date.parse(t(50)))).toBe(5);
    expect(clock(4, true)).toBe(71);
    expect(clock(2, true, Date.parse(t(50)))).toBe(50);
  });

  it('shows soft limits, and the soft limit a person raised', () => {
    const f = foldUpTo([env('run.started', {})], 1, []);
    expect(gauges({ tokens: 1000, soft: { tokens: 600 } }, f)[0]).toMatchObject({ name: 'tokens', limit: 1000, soft: 600 });
    // A soft-only limit reads against the soft limit.
    expect(gauges({ soft: { usd: 2 } }, f)[0]).toMatchObject({ name: 'usd', limit: 2, soft: 2 });
    f.apply(env('budget.raised', { wait: 'w', soft: { tokens: 900 } }));
    expect(gauges({ tokens: 1000, soft: { tokens: 600 } }, f)[0]!.soft).toBe(900);
  });

  it("starts a replay from its checkpoint's node states, ledger and deadline", () => {
    const base = baseFromCheckpoint({
      sched: { nodes: { a: { status: 'succeeded', iteration: 1, attempt: 1 }, b: { status: 'running', iteration: 1, attempt: 1 } } },
      ledger: {
        used: { tokens: 900, tools: 1, usd: 0, perTool: { noop: 1 } },
        byNode: { a: { tokens: 900, tools: 1, usd: 0, perTool: {} } },
        reserved: { k: { node: 'b', actor: 'supervisor/b', tokens: 50, usd: 0 } },
      },
      deadline: Date.parse('2026-01-01T00:01:00.000Z'),
    });
    const f = foldUpTo([env('run.replayed', { of: 'r0', fromStep: 2 }, 'supervisor', 'supervisor', '2026-01-01T00:00:30.000Z')], 1, ['a', 'b'], base);
    expect(f.status).toBe('running');
    expect(f.nodes.a).toMatchObject({ status: 'succeeded', tokens: 900 });
    expect(f.nodes.b!.status).toBe('running');
    expect(f.used.tokens).toBe(900);
    expect(f.reserved.tokens).toBe(50);
    // 60 s limit, 30 s left at the deadline: 30 s used, however long the original took to get there.
    expect(gauges({ wallClockSec: 60 }, f)[0]!.used).toBe(30);
  });

  it('counts swarm branches of a node', () => {
    const f = new RunFold(['sw']);
    f.apply(env('node.start', { node: 'sw', iteration: 1, attempt: 1 }));
    for (const b of [1, 2, 3]) f.apply(env('branch.start', { node: 'sw', branch: b, of: 3 }));
    f.apply(env('branch.completed', { node: 'sw', branch: 1 }));
    f.apply(env('branch.failed', { node: 'sw', branch: 2 }));
    expect(f.nodes.sw!.branches).toEqual({ of: 3, running: 1, done: 1, failed: 1 });
  });
});

describe('Lanes', () => {
  it('orders lanes supervisor, budget, nodes in graph order with their branches, then model and tools', () => {
    const l = new Lanes(['plan', 'analyse']);
    l.add([
      env('tool.call', {}, 'supervisor/analyse/branch-2', 'tool/web_search'),
      env('llm.request', {}, 'supervisor/plan', 'llm/default'),
      env('budget.request', {}, 'supervisor/analyse/branch-1@1.2', 'supervisor/budget'),
      env('node.start', {}, 'supervisor', 'supervisor/analyse'),
    ]);
    expect(l.lanes.map((x) => x.label)).toEqual(['supervisor', 'budget', 'plan', 'analyse', 'branch-1', 'branch-2', 'llm/default', 'tool/web_search']);
    expect(l.of('supervisor/analyse/branch-1@1.2')).toBe(4);
  });

  it('puts the branches of a wide swarm into one lane', () => {
    const l = new Lanes(['fan']);
    l.add(Array.from({ length: MAX_BRANCH_LANES + 1 }, (_, i) => env('branch.start', {}, 'supervisor/fan', `supervisor/fan/branch-${i + 1}`)));
    expect(l.lanes.map((x) => x.label)).toEqual(['fan', 'branch-*']);
    expect(l.of('supervisor/fan/branch-3')).toBe(1);
  });
});

describe('layeredLayout', () => {
  const o = { nodeWidth: 100, nodeHeight: 40, gapX: 20, gapY: 30 };
  it('puts each node below its deepest predecessor and ignores loop edges when layering', () => {
    const pos = layeredLayout(
      ['a', 'b', 'c', 'd'],
      [
        { from: 'a', to: 'b' },
        { from: 'a', to: 'c' },
        { from: 'b', to: 'd' },
        { from: 'c', to: 'd' },
        { from: 'd', to: 'a', back: true },
      ],
      o,
    );
    expect(pos.a!.y).toBe(0);
    expect(pos.b!.y).toBe(70);
    expect(pos.c!.y).toBe(70);
    expect(pos.d!.y).toBe(140);
    expect(pos.b!.x).not.toBe(pos.c!.x);
  });

  it('orders a layer by its neighbours so edges do not cross', () => {
    // x1 -> y2 and x2 -> y1, declared crosswise: the sweep swaps the second layer.
    const pos = layeredLayout(
      ['x1', 'x2', 'y1', 'y2'],
      [
        { from: 'x1', to: 'y2' },
        { from: 'x2', to: 'y1' },
      ],
      o,
    );
    expect(Math.sign(pos.x1!.x - pos.x2!.x)).toBe(Math.sign(pos.y2!.x - pos.y1!.x));
  });
});

describe('waits for a person', () => {
  const wait = (id: string, node: string, kind: 'approval' | 'interrupt') => ({
    id,
    node,
    kind,
    prompt: 'ok?',
    schema: {},
    since: '2026-01-01T00:00:00.000Z',
    countWallClock: false,
  });

  it('folds an approval: the node waits, the run sleeps and resumes, a rejection skips the node', () => {
    const evs = [
      env('run.started', {}),
      env('node.start', { node: 'a', iteration: 1, attempt: 1 }),
      env('node.completed', { node: 'a' }),
      env('wait.opened', wait('w1', 'b', 'approval')),
      env('run.waiting', { waits: [wait('w1', 'b', 'approval')] }),
    ];
    const f = foldUpTo(evs, evs.length, ['a', 'b']);
    expect(f.status).toBe('waiting');
    expect(f.nodes.b!.status).toBe('waiting');
    expect(Object.keys(f.waits)).toEqual(['w1']);
    f.apply(env('run.resumed', { pausedMs: 1200, wallClockPaused: true }));
    f.apply(
      env('wait.resolved', {
        wait: 'w1',
        node: 'b',
        kind: 'approval',
        outcome: { kind: 'signal', payload: { approved: false }, signal: 's1' },
        approved: false,
      }),
    );
    f.apply(env('node.skipped', { node: 'b', reason: 'rejected' }));
    expect(f.status).toBe('running');
    expect(f.nodes.b!.status).toBe('skipped');
    expect(f.waits).toEqual({});
    expect(f.resolved.has('w1')).toBe(true);
  });

  it('folds a question: the node keeps running, asking until the answer', () => {
    const f = foldUpTo(
      [
        env('run.started', {}),
        env('node.start', { node: 'a', iteration: 1, attempt: 1 }),
        env('wait.registered', wait('q1', 'a', 'interrupt'), 'supervisor/a@1.1'),
      ],
      3,
      ['a'],
    );
    expect(f.nodes.a).toMatchObject({ status: 'running', asking: 'interrupt' });
    f.apply(
      env(
        'wait.resolved',
        { wait: 'q1', node: 'a', kind: 'interrupt', outcome: { kind: 'signal', payload: { answer: 'yes' }, signal: 's' } },
        'supervisor',
        'supervisor/a@1.1',
      ),
    );
    expect(f.nodes.a!.asking).toBeUndefined();
    // The asking actor re-runs after a passivation and registers the same wait again: it stays answered.
    f.apply(env('wait.registered', wait('q1', 'a', 'interrupt'), 'supervisor/a@1.1'));
    expect(f.nodes.a!.asking).toBeUndefined();
  });
});

describe('waits opened only by run.waiting', () => {
  it('takes the waits a run went to sleep with (a soft budget limit has no wait.opened of its own)', () => {
    const w = { id: 'budget/tokens/1200', node: 'b', kind: 'budget', prompt: 'more?', schema: {}, since: '2026-01-01T00:00:00.000Z', countWallClock: false };
    const f = foldUpTo([env('run.started', {}), env('node.start', { node: 'b', iteration: 1, attempt: 1 }), env('run.waiting', { waits: [w] })], 3, ['b']);
    expect(f.nodes.b).toMatchObject({ status: 'running', asking: 'budget' });
    expect(Object.keys(f.waits)).toEqual([w.id]);
    f.apply(env('wait.resolved', { wait: w.id, node: 'b', kind: 'budget', outcome: { kind: 'signal', payload: { decision: 'grant' }, signal: 's' } }));
    expect(f.waits).toEqual({});
    expect(f.nodes.b!.asking).toBeUndefined();
  });
});

describe('answer forms', () => {
  const refund = {
    type: 'object',
    properties: { approved: { type: 'boolean' }, amount: { type: 'number', exclusiveMinimum: 0 }, comment: { type: 'string', maxLength: 2000 } },
    required: ['approved'],
    additionalProperties: false,
  };

  it('offers Approve/Reject with the other simple properties as optional fields', () => {
    expect(answerForm({ kind: 'approval', schema: refund })).toEqual({
      mode: 'approval',
      fields: [
        { name: 'amount', type: 'number', required: false },
        { name: 'comment', type: 'string', required: false, long: true },
      ],
    });
  });

  it('asks a text answer for the default question schema, JSON for anything complex', () => {
    expect(answerForm({ kind: 'interrupt', schema: { type: 'object', properties: { answer: { type: 'string' } }, required: ['answer'] } })).toEqual({
      mode: 'text',
      field: 'answer',
    });
    const nested = { type: 'object', properties: { approved: { type: 'boolean' }, lines: { type: 'array', items: { type: 'string' } } } };
    expect(answerForm({ kind: 'approval', schema: nested })).toEqual({ mode: 'json', template: JSON.stringify({ approved: false, lines: [] }, null, 2) });
    expect(answerForm({ kind: 'budget', schema: { type: 'object', properties: { action: { enum: ['raise', 'stop'] } }, required: ['action'] } })).toMatchObject(
      { mode: 'fields', fields: [{ name: 'action', type: 'enum', options: ['raise', 'stop'] }] },
    );
    expect(answerForm({ kind: 'approval', schema: undefined }).mode).toBe('json');
  });

  it("offers a budget's soft limit as grant / deny / fork, each with its own fields (fork, with a budget object, in JSON)", () => {
    const budget = {
      oneOf: [
        {
          type: 'object',
          properties: {
            decision: { type: 'string', const: 'grant' },
            tokens: { type: 'integer', exclusiveMinimum: 0 },
            comment: { type: 'string', maxLength: 2000 },
          },
          required: ['decision'],
        },
        { type: 'object', properties: { decision: { type: 'string', const: 'deny' }, comment: { type: 'string', maxLength: 2000 } }, required: ['decision'] },
        { type: 'object', properties: { decision: { type: 'string', const: 'fork' }, budget: { type: 'object' } }, required: ['decision', 'budget'] },
      ],
    };
    expect(answerForm({ kind: 'budget', schema: budget })).toEqual({
      mode: 'choice',
      key: 'decision',
      variants: [
        {
          value: 'grant',
          form: {
            mode: 'fields',
            fields: [
              { name: 'tokens', type: 'integer', required: false },
              { name: 'comment', type: 'string', required: false, long: true },
            ],
          },
        },
        { value: 'deny', form: { mode: 'fields', fields: [{ name: 'comment', type: 'string', required: false, long: true }] } },
        { value: 'fork', form: { mode: 'json', template: JSON.stringify({ decision: 'fork', budget: {} }, null, 2) } },
      ],
    });
  });

  it('builds the payload: empty optional fields left out, numbers parsed, a non-number is the field’s error', () => {
    const form = answerForm({ kind: 'approval', schema: refund });
    if (form.mode !== 'approval') throw new Error(form.mode);
    expect(answerPayload(form.fields, { amount: ' 12.5 ', comment: '' }, { approved: true })).toEqual({ payload: { approved: true, amount: 12.5 } });
    expect(answerPayload(form.fields, { amount: '-3', comment: 'too much' }, { approved: false })).toEqual({
      payload: { approved: false, amount: -3, comment: 'too much' },
    });
    expect(answerPayload(form.fields, { amount: 'ten' }, { approved: true })).toEqual({ field: 'amount', message: 'amount: not a number' });
    expect(fieldOf('payload.amount', ['amount', 'comment'])).toBe('amount');
    expect(fieldOf('payload', ['amount'])).toBeUndefined();
  });

  it('says how long until a timeout', () => {
    expect(timeLeft(undefined, 0)).toBe('no timeout');
    expect(timeLeft(3 * 86_400_000, 0)).toBe('3 d 00 h');
    expect(timeLeft(3_725_000, 0)).toBe('1 h 02 m');
    expect(timeLeft(45_000, 0)).toBe('45 s');
    expect(timeLeft(0, 1)).toBe('timed out');
  });
});
