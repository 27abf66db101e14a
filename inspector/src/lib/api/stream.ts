import { wsUrl } from './http';
import type { DeltaFrame, Envelope, RunStatus, RunSummary, StreamFrame } from './types';

export type StreamState = 'connecting' | 'open' | 'reconnecting' | 'ended' | 'closed';

/** Hands over what arrived once per frame (or every 100 ms when the tab draws nothing): one render per batch, not per envelope. */
function batcher<T>(flush: (items: T[]) => void): { push(x: T): void; now(): void; cancel(): void } {
  let items: T[] = [];
  let raf = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const run = () => {
    cancelAnimationFrame(raf);
    clearTimeout(timer);
    raf = 0;
    timer = undefined;
    if (!items.length) return;
    const out = items;
    items = [];
    flush(out);
  };
  return {
    push(x) {
      items.push(x);
      if (!raf) {
        raf = requestAnimationFrame(run);
        timer = setTimeout(run, 100);
      }
    },
    now: run,
    cancel() {
      cancelAnimationFrame(raf);
      clearTimeout(timer);
      items = [];
    },
  };
}

export interface RunFollower {
  close(): void;
}

/**
 * Follow a run's envelopes over `GET /runs/:id/stream`: from `after`, in seq order, until the run
 * ends. A dropped connection, or the server saying this client fell `behind`, reconnects with
 * `after` = the last seq received, so nothing is missed and nothing arrives twice.
 */
export function followRun(
  runId: string,
  after: number,
  on: {
    envelopes(batch: Envelope[]): void;
    end(status: RunStatus, lastSeq: number): void;
    state(s: StreamState, detail?: string): void;
    delta?(d: DeltaFrame): void;
  },
): RunFollower {
  let last = after;
  let ws: WebSocket | undefined;
  let stopped = false;
  let retry = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const batch = batcher<Envelope>((b) => on.envelopes(b));

  const connect = () => {
    on.state(retry ? 'reconnecting' : 'connecting');
    ws = new WebSocket(wsUrl(`/runs/${encodeURIComponent(runId)}/stream?after=${last}`));
    ws.onopen = () => {
      retry = 0;
      on.state('open');
    };
    ws.onmessage = (m) => {
      const f = JSON.parse(String(m.data)) as StreamFrame;
      if (f.kind === 'envelope') {
        if (f.envelope.seq <= last) return; // already have it (a resumed stream starts after `last`, so this is only defensive)
        last = f.envelope.seq;
        batch.push(f.envelope);
      } else if (f.kind === 'end') {
        stopped = true;
        batch.now();
        on.state('ended');
        on.end(f.status, f.lastSeq);
      } else if (f.kind === 'delta') {
        on.delta?.(f);
      } else if (f.kind === 'behind' || f.kind === 'error') {
        on.state('reconnecting', f.error.message);
      }
    };
    ws.onclose = () => {
      if (stopped) return;
      batch.now();
      retry += 1;
      on.state('reconnecting');
      // At once after `behind`; backing off when the gateway is away.
      timer = setTimeout(connect, Math.min(5000, retry === 1 ? 0 : 250 * 2 ** retry));
    };
  };
  connect();
  return {
    close() {
      stopped = true;
      clearTimeout(timer);
      batch.cancel();
      ws?.close();
      on.state('closed');
    },
  };
}

export interface StatusFollower {
  close(): void;
}

/**
 * Follow the status of every run over `GET /stream`. `ready` is called once the gateway listens
 * for this client (and again after every reconnect): load the list then, and no change is lost.
 */
export function followStatuses(on: { ready(): void; runs(batch: Array<RunSummary & { lastSeq: number }>): void; state(s: StreamState): void }): StatusFollower {
  let ws: WebSocket | undefined;
  let stopped = false;
  let retry = 0;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const batch = batcher<RunSummary & { lastSeq: number }>((b) => on.runs(b));
  const connect = () => {
    on.state(retry ? 'reconnecting' : 'connecting');
    ws = new WebSocket(wsUrl('/stream'));
    ws.onmessage = (m) => {
      const f = JSON.parse(String(m.data)) as StreamFrame;
      if (f.kind === 'ready') {
        retry = 0;
        on.state('open');
        on.ready();
      } else if (f.kind === 'run') batch.push(f.run);
    };
    ws.onclose = () => {
      if (stopped) return;
      batch.now();
      retry += 1;
      on.state('reconnecting');
      timer = setTimeout(connect, Math.min(5000, retry === 1 ? 0 : 250 * 2 ** retry));
    };
  };
  connect();
  return {
    close() {
      stopped = true;
      clearTimeout(timer);
      batch.cancel();
      ws?.close();
    },
  };
}
