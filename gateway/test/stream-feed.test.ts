import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { envelopeIdFor, InProcessBus } from '@ao/runtime';
import type { Envelope, RunRecord } from '@ao/runtime';
import { FrameWriter, StatusFeed, StreamFrame } from '../src/stream/mod.js';
import type { StreamFrameT } from '../src/stream/mod.js';

/** A socket whose unread bytes the test sets: `bufferedAmount` is what the client has not read yet. */
class FakeSocket extends EventEmitter {
  bufferedAmount = 0;
  readyState = 1;
  frames: StreamFrameT[] = [];
  closedWith: number | undefined;
  /** A client that reads everything at once. */
  reads = false;
  private pending: Array<() => void> = [];
  send(data: string, cb?: () => void) {
    this.frames.push(StreamFrame.parse(JSON.parse(data)));
    this.bufferedAmount += Buffer.byteLength(data);
    if (cb) this.pending.push(cb);
    if (this.reads) this.flush();
  }
  /** The client read everything. */
  flush() {
    this.bufferedAmount = 0;
    for (const cb of this.pending.splice(0)) cb();
  }
  close(code?: number) {
    this.closedWith = code;
    this.readyState = 3;
    this.emit('close');
  }
}

/** A run row with only what the feed reads set meaningfully. */
const run = (id: string, status: RunRecord['status'], lastSeq: number): RunRecord =>
  ({
    id,
    graph: 'g',
    graphVersion: 'v',
    status,
    input: {},
    output: null,
    error: null,
    budget: {},
    usage: { inputTokens: 0, outputTokens: 0, totalTokens: lastSeq, llmCalls: 0, toolCalls: 0, perTool: {} },
    nodes: {},
    traceId: null,
    owner: null,
    leaseExpiresAt: null,
    cancelRequested: false,
    tenant: 'default',
    idempotencyKey: null,
    waits: [],
    wakeAt: null,
    replay: null,
    lastSeq,
    createdAt: new Date(0).toISOString(),
    updatedAt: new Date(0).toISOString(),
    startedAt: null,
    finishedAt: null,
  }) as RunRecord;
const env = (runId: string, seq: number, type: string): Envelope => ({
  id: envelopeIdFor(runId, `${seq}`),
  runId,
  seq,
  from: 'supervisor' as Envelope['from'],
  to: 'supervisor' as Envelope['to'],
  type,
  payload: {},
  causationId: null,
  trace: null,
  time: new Date(0).toISOString(),
});
/** Wait until the feed did what the test waits for (it reads runs asynchronously). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 1));
}

describe('StatusFeed (GET /stream)', () => {
  function setup(readMs = 0) {
    const bus = new InProcessBus();
    const rows = new Map<string, RunRecord>();
    let reads = 0;
    const feed = new StatusFeed(
      {
        bus,
        getRun: async (id) => {
          reads += 1;
          const row = rows.get(id);
          if (readMs) await new Promise((r) => setTimeout(r, readMs));
          return row;
        },
      },
      { maxBufferedBytes: 2000, stallMs: 1000 },
      (e) => {
        throw e;
      },
    );
    return { bus, rows, feed, reads: () => reads };
  }

  it('sends each client `ready`, then the row of a run after each status change, and nothing for other envelopes', async () => {
    const { bus, rows, feed } = setup();
    const s = new FakeSocket();
    feed.add(s);
    expect(s.frames).toEqual([{ kind: 'ready' }]);
    rows.set('r1', run('r1', 'running', 1));
    await bus.publish(env('r1', 1, 'run.started'));
    await bus.publish(env('r1', 2, 'llm.request'));
    rows.set('r1', run('r1', 'running', 3));
    await bus.publish(env('r1', 3, 'node.start'));
    await until(() => s.frames.length === 3);
    expect(s.frames.slice(1)).toEqual([
      { kind: 'run', cause: 'run.started', run: expect.objectContaining({ id: 'r1', status: 'running', lastSeq: 1 }) },
      { kind: 'run', cause: 'node.start', run: expect.objectContaining({ id: 'r1', status: 'running', lastSeq: 3 }) },
    ]);
  });

  it('lets a client go with `behind` once it leaves more than its bound unread, and keeps serving the others', async () => {
    const { bus, rows, feed } = setup();
    const slow = new FakeSocket();
    const fast = new FakeSocket();
    feed.add(slow);
    feed.add(fast);
    for (let seq = 1; seq <= 20; seq++) {
      rows.set('r1', run('r1', 'running', seq));
      await bus.publish(env('r1', seq, 'node.completed'));
      await until(() => fast.frames.length === seq + 1);
      fast.flush();
    }
    expect(slow.closedWith).toBe(4001);
    expect(slow.frames.at(-1)).toMatchObject({ kind: 'behind', lastSeq: null, error: { code: 'AO_STREAM_BEHIND' } });
    // It never had more than the bound plus one frame unread.
    const lastRun = JSON.stringify(fast.frames.at(-1));
    expect(slow.bufferedAmount).toBeLessThanOrEqual(2000 + Buffer.byteLength(lastRun) * 2);
    expect(feed.behind).toBe(1);
    expect(fast.closedWith).toBeUndefined();
    expect(fast.frames.filter((f) => f.kind === 'run')).toHaveLength(20);
  });

  it('coalesces the changes of a busy run into a bounded number of reads, the last one sent last', async () => {
    const { bus, rows, feed, reads } = setup(5);
    const s = new FakeSocket();
    s.reads = true;
    feed.add(s);
    rows.set('r1', run('r1', 'succeeded', 50));
    for (let seq = 1; seq <= 50; seq++) await bus.publish(env('r1', seq, seq === 50 ? 'run.finished' : 'node.completed'));
    await until(() => s.frames.at(-1)?.kind === 'run' && (s.frames.at(-1) as { cause: string }).cause === 'run.finished');
    expect(reads()).toBeLessThan(50);
    expect(s.frames.at(-1)).toMatchObject({ kind: 'run', cause: 'run.finished', run: { status: 'succeeded', lastSeq: 50 } });
  });

  it('listens to the bus only while a client is connected', async () => {
    const { bus, rows, feed, reads } = setup();
    const s = new FakeSocket();
    feed.add(s);
    s.close();
    rows.set('r1', run('r1', 'running', 1));
    // Nobody subscribes, so the bus delivers this to no one (publish returns once it is handed out).
    await bus.publish(env('r1', 1, 'run.started'));
    expect(reads()).toBe(0);
    expect(feed.size).toBe(0);
  });
});

describe('FrameWriter', () => {
  it('sends at once while the bound holds, and waits for the client to read before passing it', async () => {
    const s = new FakeSocket();
    const w = new FrameWriter(s, { maxBufferedBytes: 100, stallMs: 5000 });
    const frame = JSON.stringify({ kind: 'ready' });
    for (let i = 0; i < 6; i++) expect(await w.write(frame)).toBe(true); // 6 x 16 bytes
    let sent = false;
    const pending = w.write(frame).then((ok) => (sent = ok));
    await Promise.resolve();
    expect(sent).toBe(false);
    expect(s.frames).toHaveLength(6);
    s.flush();
    await pending;
    expect(sent).toBe(true);
    expect(w.peakBufferedBytes).toBeLessThanOrEqual(100);
  });

  it('reports a client that reads nothing for stallMs as stalled', async () => {
    const s = new FakeSocket();
    const w = new FrameWriter(s, { maxBufferedBytes: 10, stallMs: 50 });
    expect(await w.write('{"kind":"ready"}')).toBe(true); // an empty buffer takes any frame
    expect(await w.write('{"kind":"ready"}')).toBe(false);
  });
});
