import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { Envelope } from '../envelope/mod.js';
import type { DrizzleStore } from './drizzle-store.js';
import { RequestHistories } from './request-history.js';
import { pgliteStores } from '../testing/raw-pglite.js';
import { seededWords } from '../testing/words.js';

const words = seededWords;

describe('an agent conversation is stored as what each request adds to the one before', () => {
  const pg = pgliteStores();
  const open = () => pg.open();
  let store: DrizzleStore;
  beforeAll(() => {
    store = open();
  });

  let seq = 0;
  const env = (runId: string, type: string, from: string, payload: unknown): Envelope =>
    ({
      id: `00000000-0000-4000-8000-${String(++seq).padStart(12, '0')}`,
      runId,
      seq,
      type,
      from,
      to: 'llm/default',
      payload,
      causationId: null,
      trace: null,
      time: new Date().toISOString(),
    }) as Envelope;

  /** A conversation of `turns` turns by two agents of one run, one commit a request (as the journal makes it). */
  async function converse(
    s: DrizzleStore,
    runId: string,
    turns: number,
    firstTurn = 1,
    history: { a: unknown[]; b: unknown[] } = { a: [{ role: 'system', content: 'You are A.' }], b: [{ role: 'system', content: 'You are B.' }] },
  ): Promise<Envelope[]> {
    const written: Envelope[] = [];
    for (let t = firstTurn; t < firstTurn + turns; t++) {
      for (const agent of ['a', 'b'] as const) {
        const messages = history[agent];
        messages.push({ role: 'tool', content: words(t * 7 + (agent === 'a' ? 1 : 2), 1000) });
        const req = env(runId, 'llm.request', `supervisor/${agent}`, { key: `${agent}/${t}`, profile: 'default', messages, tools: [] });
        written.push({ ...req, payload: { ...(req.payload as object), messages: [...messages] } });
        await s.commit({ runId, events: [req], owner: 'n1' });
        const res = env(runId, 'llm.response', `llm/default`, { key: `${agent}/${t}`, content: `answer ${t}` });
        messages.push({ role: 'assistant', content: `answer ${t}` });
        written.push(res);
        await s.commit({ runId, events: [res], owner: 'n1' });
      }
    }
    return written;
  }

  it('stores each message about once, and every read gives back whole requests', async () => {
    await store.createRun({ id: 'h-1', graph: 'g', graphVersion: 'v', input: {}, budget: {}, nodes: {}, traceId: null, owner: 'n1', leaseMs: 60_000 });
    const written = await converse(store, 'h-1', 30);
    const bytes = await pg.client.query<{ n: number }>(
      "select sum(coalesce(octet_length(body::text), 0) + coalesce(octet_length(turns::text), 0) + coalesce(octet_length(packed), 0) + coalesce(octet_length(packed_turns), 0))::int as n from journal where run_id = 'h-1'",
    );
    // 60 requests of growing history (1 KB a turn each): about 30 x 31 KB whole, about 60 KB as deltas.
    expect(bytes.rows[0]!.n).toBeLessThan(120_000);
    expect(await store.listEvents('h-1', { limit: 1_000 })).toEqual(written);
    // Pages and reads that start after a request's base read the run's earlier rows first.
    const page = await store.listEvents('h-1', { after: 100, limit: 7 });
    expect(page).toEqual(written.slice(100, 107));
    expect((await store.eventsAfter([{ runId: 'h-1', after: 110 }])).get('h-1')).toEqual(written.slice(110));
    expect(await store.getEvents('h-1', [written[90]!.id])).toEqual([written[90]]);
    expect(await store.eventsById([{ runId: 'h-1', id: written[118]!.id }])).toEqual([written[118]]);
    expect((await store.listEventsOfType('h-1', 'llm.request')).map((e) => (e.payload as { messages: unknown[] }).messages.length)).toEqual(
      written.filter((e) => e.type === 'llm.request').map((e) => (e.payload as { messages: unknown[] }).messages.length),
    );
  });

  it('a request that does not continue the one before (a changed history) is stored with what it keeps of it', async () => {
    await store.createRun({ id: 'h-2', graph: 'g', graphVersion: 'v', input: {}, budget: {}, nodes: {}, traceId: null, owner: 'n1', leaseMs: 60_000 });
    const a = env('h-2', 'llm.request', 'supervisor/a', {
      messages: [
        { role: 'system', content: 'x' },
        { role: 'user', content: 'one' },
      ],
    });
    const b = env('h-2', 'llm.request', 'supervisor/a', {
      messages: [
        { role: 'system', content: 'x' },
        { role: 'user', content: 'two' },
        { role: 'user', content: 'three' },
      ],
    });
    const c = env('h-2', 'llm.request', 'supervisor/a', { messages: [{ role: 'system', content: 'other' }] });
    const d = env('h-2', 'llm.request', 'supervisor/a', { messages: 'not an array' });
    for (const e of [a, b, c, d]) await store.commit({ runId: 'h-2', events: [e], owner: 'n1' });
    expect(await store.listEvents('h-2', { limit: 10 })).toEqual([a, b, c, d]);
  });

  it('after a restart the next request is stored whole, then deltas go on; a finished run is forgotten', async () => {
    await store.createRun({ id: 'h-3', graph: 'g', graphVersion: 'v', input: {}, budget: {}, nodes: {}, traceId: null, owner: 'n1', leaseMs: 60_000 });
    const history = { a: [{ role: 'system', content: 'You are A.' }] as unknown[], b: [{ role: 'system', content: 'You are B.' }] as unknown[] };
    const before = await converse(store, 'h-3', 3, 1, history);
    const restarted = open();
    const after = await converse(restarted, 'h-3', 3, 4, history);
    expect(await restarted.listEvents('h-3', { limit: 100 })).toEqual([...before, ...after]);
    await restarted.commit({ runId: 'h-3', events: [], patch: { status: 'succeeded' }, owner: 'n1' });
    expect(await store.listEvents('h-3', { limit: 100 })).toEqual([...before, ...after]);
  });

  it("keeps a finished run's output once: its row refers to its run.finished, and every read of the run gives it whole", async () => {
    await store.createRun({
      id: 'h-4',
      graph: 'g4',
      graphVersion: 'v',
      input: {},
      budget: {},
      nodes: {},
      traceId: null,
      owner: 'n1',
      leaseMs: 60_000,
      idempotencyKey: 'k-h-4',
    });
    const output = { a: { text: 'done', tools: [{ name: 'read', args: { page: 1 }, ok: true, result: { text: words(9, 3000) } }] } };
    const done = env('h-4', 'node.completed', 'supervisor/a', { node: 'a', output: output.a });
    const finished = env('h-4', 'run.finished', 'supervisor', { status: 'succeeded', output });
    await store.commit({ runId: 'h-4', events: [done, finished], patch: { status: 'succeeded', output }, owner: 'n1' });
    const row = await pg.client.query<{ output: unknown; size: number }>("select output, pg_column_size(output) as size from runs where id = 'h-4'");
    expect(row.rows[0]!.output).toBe(`\uE000run.finished:${finished.id}`);
    expect((await store.getRun('h-4'))!.output).toEqual(output);
    expect((await open().getRun('h-4'))!.output).toEqual(output);
    expect((await store.listRuns({ graph: 'g4', limit: 10 })).runs.map((r) => r.output)).toEqual([output]);
    expect((await store.findRunByIdempotencyKey('default', 'k-h-4'))!.run.output).toEqual(output);
    // The process that stored it reads it back without reading the log (a run waited on where it ran);
    // another reads its run.finished; neither hands out an object a caller could change for the next.
    const byId = vi.spyOn(store, 'eventsById');
    const mine = (await store.getRun('h-4'))!.output as typeof output;
    expect(mine).toEqual(output);
    expect(byId).not.toHaveBeenCalled();
    mine.a.text = 'changed by a caller';
    expect((await store.getRun('h-4'))!.output).toEqual(output);
    byId.mockRestore();
    const other = open();
    const read = vi.spyOn(other, 'eventsById');
    expect((await other.getRun('h-4'))!.output).toEqual(output);
    expect(read).toHaveBeenCalled();
    // An output that is not its run.finished's is stored as it is.
    await store.createRun({ id: 'h-5', graph: 'g5', graphVersion: 'v', input: {}, budget: {}, nodes: {}, traceId: null, owner: 'n1', leaseMs: 60_000 });
    await store.commit({
      runId: 'h-5',
      events: [env('h-5', 'run.finished', 'supervisor', { status: 'succeeded', output: { other: 1 } })],
      patch: { status: 'succeeded', output },
      owner: 'n1',
    });
    expect((await pg.client.query<{ output: unknown }>("select output from runs where id = 'h-5'")).rows[0]!.output).toEqual(output);
    expect((await store.getRun('h-5'))!.output).toEqual(output);
  });

  it("a node's context holds the run's input and earlier commits' node outputs by reference, and every read gives it back whole", async () => {
    await store.createRun({ id: 'h-6', graph: 'g', graphVersion: 'v', input: {}, budget: {}, nodes: {}, traceId: null, owner: 'n1', leaseMs: 60_000 });
    const input = { brief: words(41, 600) };
    const out = (n: number) => ({ text: words(n, 700), tools: [] });
    const started = env('h-6', 'run.started', 'supervisor', { graph: 'g', version: 'v', input, budget: {} });
    const a = env('h-6', 'node.completed', 'supervisor/a', { node: 'a', iteration: 1, attempt: 1, output: out(1) });
    const b = env('h-6', 'node.completed', 'supervisor/b', { node: 'b', iteration: 1, attempt: 1, output: out(2) });
    // The same commit as b's end: b's output is stored again there (the row is deflated whole), a's and the input are referred to.
    const c = env('h-6', 'node.start', 'supervisor', {
      node: 'c',
      iteration: 1,
      attempt: 1,
      context: { input, outputs: { a: out(1), b: out(2), short: { text: 'ok' } }, iterations: {}, upstream: ['a', 'b'] },
    });
    await store.commit({ runId: 'h-6', events: [started, a], owner: 'n1' });
    await store.commit({ runId: 'h-6', events: [b, c], owner: 'n1' });
    // As the store packs c's row (what it knows: the commit before landed).
    const known = new RequestHistories();
    const first = known.packer('h-6');
    first.row([started, a]);
    known.landed('h-6', first);
    const packed = known.packer('h-6').row([b, c]).pack(JSON.stringify(c.payload), c);
    const text = typeof packed === 'string' ? packed : packed.json;
    expect(text).not.toContain(out(1).text);
    expect(text).not.toContain(input.brief);
    expect(text).toContain(out(2).text);
    expect(typeof packed === 'string' ? [] : packed.refs).toEqual([
      [
        ['context', 'input'],
        ['e', started.id, 'input'],
      ],
      [
        ['context', 'outputs', 'a'],
        ['e', a.id, 'output'],
      ],
    ]);
    // Whole from every read: the log, a read that starts after the envelopes referred to, by id.
    expect(await store.listEvents('h-6', { limit: 10 })).toEqual([started, a, b, c]);
    expect((await store.eventsAfter([{ runId: 'h-6', after: b.seq }])).get('h-6')).toEqual([c]);
    expect(await store.getEvents('h-6', [c.id])).toEqual([c]);
    // A read of b (its row holds c) puts back nothing of c's: following every reference of a row
    // read for one envelope reads the run's log back row by row (a replay of a 200-step loop
    // took 10 times as long).
    const byId = vi.spyOn(store, 'eventsById');
    try {
      expect(await store.getEvents('h-6', [b.id])).toEqual([b]);
      expect(byId).not.toHaveBeenCalled();
    } finally {
      byId.mockRestore();
    }
    // A new process (nothing known of the run) stores a context whole.
    const d = env('h-6', 'node.start', 'supervisor', {
      node: 'd',
      iteration: 1,
      attempt: 1,
      context: { input, outputs: { a: out(1) }, iterations: {}, upstream: ['a'] },
    });
    const restarted = open();
    await restarted.commit({ runId: 'h-6', events: [d], owner: 'n1' });
    const fresh = new RequestHistories().packer('h-6').row([d]).pack(JSON.stringify(d.payload), d);
    expect(typeof fresh).toBe('string');
    expect(await restarted.listEvents('h-6', { limit: 10 })).toEqual([started, a, b, c, d]);
  });
});
