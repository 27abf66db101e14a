import { WebSocket } from 'ws';
import type { Envelope } from '@ao/runtime';
import { StreamFrame } from '../src/stream/mod.js';
import type { StreamFrameT } from '../src/stream/mod.js';

/** A test client of a gateway stream: collects every frame (validated against the frame schema) and the close. */
export interface StreamClient {
  ws: WebSocket;
  frames: StreamFrameT[];
  envelopes(): Envelope[];
  /** Resolves with the close code once the server closed the stream. */
  closed: Promise<{ code: number; reason: string }>;
  /** Resolves once a frame satisfies `pred` (already received ones count). */
  until(pred: (f: StreamFrameT) => boolean): Promise<StreamFrameT>;
}

export function connect(url: string, o: { paused?: boolean } = {}): Promise<StreamClient> {
  const ws = new WebSocket(url);
  const frames: StreamFrameT[] = [];
  const waiters: Array<{ pred: (f: StreamFrameT) => boolean; resolve: (f: StreamFrameT) => void }> = [];
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.on('message', (data) => {
    const f = StreamFrame.parse(JSON.parse(data.toString()));
    frames.push(f);
    for (const w of [...waiters]) {
      if (w.pred(f)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(f);
      }
    }
  });
  const client: StreamClient = {
    ws,
    frames,
    envelopes: () => frames.flatMap((f) => (f.kind === 'envelope' ? [f.envelope] : [])),
    closed,
    until: (pred) => {
      const seen = frames.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        waiters.push({ pred, resolve });
        void closed.then(() => setImmediate(() => reject(new Error(`stream closed before the awaited frame; got ${frames.length} frames`))));
      });
    },
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => {
      if (o.paused) ws.pause();
      resolve(client);
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => reject(Object.assign(new Error(`HTTP ${res.statusCode}: ${body}`), { status: res.statusCode, body: JSON.parse(body || '{}') })));
    });
    ws.once('error', reject);
  });
}
