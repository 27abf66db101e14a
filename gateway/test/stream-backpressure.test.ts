import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@ao/runtime';
import type { Envelope } from '@ao/runtime';
import { buildApp, startRuntime } from '../src/mod.js';
import type { Runtime } from '../src/mod.js';
import type { RunStreamRecord } from '../src/stream/mod.js';
import { connect } from './stream-client.js';
import type { StreamClient } from './stream-client.js';
import { fanout, probes } from './stream-fixtures.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapMiB = () => {
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

/** Small bounds, so that a run of 10,000 envelopes (7 MB) overwhelms a client that does not read. */
const LIMITS = { maxBufferedBytes: 64 * 1024, maxQueuedBytes: 256 * 1024, stallMs: 1500, pageSize: 200, pollMs: 1000 };
const ARTIFACTS = new URL('./browser/artifacts/', import.meta.url);

const range = (from: number, to: number) => Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
const frameBytes = (e: Envelope) => Buffer.byteLength(JSON.stringify({ kind: 'envelope', envelope: e }));
/** Wait for a condition the server reaches by itself (no assertion on how long it takes). */
async function eventually<T>(probe: () => T | undefined): Promise<T> {
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('a stream client that reads too slowly', () => {
  let dir: string;
  let rt: Runtime;
  let app: FastifyInstance;
  let ws: string;
  const figures: Record<string, unknown> = { limits: LIMITS };
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ao-backpressure-'));
    rt = await startRuntime(loadConfig({ AO_DATA_DIR: dir, AO_NODE_ID: 'bp' }), { graphs: [fanout], tools: probes });
    app = await buildApp(rt.engine, { inspectorDir: false, stream: LIMITS });
    // A Unix socket, not TCP: its kernel buffers are small and fixed (a few hundred KB), while a
    // loopback TCP connection's grow with autotuning and can swallow a whole 7 MB run, so a client
    // that does not read would never fill the server's own buffers.
    const sock = join(dir, 'gateway.sock');
    await app.listen({ path: sock });
    ws = `ws+unix://${sock}:`;
  });
  afterAll(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    await writeFile(new URL('stream-memory.json', ARTIFACTS), JSON.stringify(figures, null, 2));
    await app?.close();
    await rt?.close();
    await rm(dir, { recursive: true, force: true });
  });
  const recordOf = (runId: string, after: number) => () => app.streams.finished.find((r) => r.runId === runId && r.after === after);
  /** Read what the server had buffered for a paused client, up to its close. */
  const drain = async (c: StreamClient) => {
    c.ws.resume();
    return c.closed;
  };

  let runId: string;
  let live: { client: StreamClient; record: RunStreamRecord };

  it('is told it fell behind and let go when it never reads a live run, and the server never holds more than its bound for it', async () => {
    const heapBefore = heapMiB();
    const res = await app.inject({ method: 'POST', url: '/runs', payload: { graph: 'fanout-10k' } });
    runId = (res.json() as { id: string }).id;
    const client = await connect(`${ws}/runs/${runId}/stream`, { paused: true });
    const record = await eventually(recordOf(runId, 0));
    const heapAtBehind = heapMiB();
    expect(record.outcome).toBe('behind');
    // It reads again at once: what was buffered for it arrives, then `behind`, then the close.
    // (Had it gone on not reading, ws would have dropped the connection after 30 s.)
    expect((await drain(client)).code).toBe(4001);
    expect(app.streams.open).toBe(0);
    const run = await rt.engine.waitForRun(runId, 200_000);
    expect(run.status).toBe('succeeded');
    const log = await rt.engine.listEvents(runId, { limit: 1_000_000 });
    const largest = Math.max(...log.map(frameBytes));
    // The bound: a socket buffer of maxBufferedBytes (plus the one frame that may start it) and a queue of maxQueuedBytes.
    expect(record.peakBufferedBytes).toBeLessThanOrEqual(LIMITS.maxBufferedBytes + largest);
    expect(record.peakQueuedBytes).toBeLessThanOrEqual(LIMITS.maxQueuedBytes);
    expect(record.sent).toBeLessThan(log.length);
    const total = log.reduce((s, e) => s + frameBytes(e), 0);
    figures.live = {
      events: log.length,
      streamBytes: total,
      largestFrame: largest,
      ...record,
      heapBeforeMiB: heapBefore,
      heapAtBehindMiB: heapAtBehind,
      heapAfterRunMiB: heapMiB(),
    };
    live = { client, record };
  }, 240_000);

  it('receives everything up to the seq it was told, then `behind`, and resumes from there with no gap and no duplicate', async () => {
    const { client, record } = live;
    const behind = client.frames.at(-1)!;
    expect(behind).toMatchObject({ kind: 'behind', lastSeq: record.sent, error: { code: 'AO_STREAM_BEHIND' } });
    const first = client.envelopes();
    expect(first.map((e) => e.seq)).toEqual(range(1, record.sent));
    const rest = await connect(`${ws}/runs/${runId}/stream?after=${first.at(-1)!.seq}`);
    expect((await rest.closed).code).toBe(1000);
    const log = await rt.engine.listEvents(runId, { limit: 1_000_000 });
    expect([...first, ...rest.envelopes()]).toEqual(log);
    expect(rest.frames.at(-1)).toMatchObject({ kind: 'end', status: 'succeeded' });
  });

  it('is let go when it stops reading while catching up on a stored log, holding at most one socket buffer for it', async () => {
    const client = await connect(`${ws}/runs/${runId}/stream?after=10`, { paused: true });
    const record = await eventually(recordOf(runId, 10));
    expect(record.outcome).toBe('behind');
    const log = await rt.engine.listEvents(runId, { limit: 1_000_000 });
    expect(record.peakBufferedBytes).toBeLessThanOrEqual(LIMITS.maxBufferedBytes + Math.max(...log.map(frameBytes)));
    expect(record.sent).toBeLessThan(log.length - 10);
    expect((await drain(client)).code).toBe(4001);
    expect(client.envelopes().map((e) => e.seq)).toEqual(range(11, 10 + record.sent));
    figures.catchUp = { ...record };
  });
});
