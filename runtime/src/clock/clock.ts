/** Time, injected, so deadlines, backoff and leases can be tested without sleeping. */
export interface Clock {
  now(): number;
  /** Calls `fn` after `ms`; returns a function that cancels it. */
  setTimer(ms: number, fn: () => void): () => void;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimer(ms, fn) {
    // Node's timers run on a millisecond clock of their own and may fire up to a millisecond
    // before Date.now() reaches `now() + ms` (a 1 s wall-clock budget stopped its run at 0.999 s):
    // a timer that fires early waits out the rest, so `fn` never sees `now()` before its time.
    const due = Date.now() + ms;
    let t: NodeJS.Timeout;
    const fire = () => {
      const left = due - Date.now();
      if (left > 0) t = setTimeout(fire, left);
      else fn();
    };
    t = setTimeout(fire, ms);
    return () => clearTimeout(t);
  },
  sleep(ms, signal) {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const t = setTimeout(() => (signal?.removeEventListener('abort', onAbort), resolve()), ms);
      const onAbort = () => (clearTimeout(t), reject(signal!.reason));
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  },
};

/**
 * `clock`'s time as an ISO 8601 timestamp (a record's `updatedAt`, an envelope's `time`). Without a
 * clock it is the system's: a store stamps its rows with wall time, whatever clock a run reads.
 */
export function isoNow(clock: Clock = systemClock): string {
  return new Date(clock.now()).toISOString();
}

/** A clock that moves only when told: `advance(ms)` fires every timer that falls due, in order. */
export class SimulatedClock implements Clock {
  private t: number;
  private timers: Array<{ at: number; id: number; fn: () => void }> = [];
  private nextId = 0;

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimer(ms: number, fn: () => void): () => void {
    const id = this.nextId++;
    this.timers.push({ at: this.t + Math.max(0, ms), id, fn });
    return () => {
      this.timers = this.timers.filter((x) => x.id !== id);
    };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const cancel = this.setTimer(ms, () => resolve());
      signal?.addEventListener('abort', () => (cancel(), reject(signal.reason)), { once: true });
    });
  }

  /** Move time forward, firing due timers in order (timers they set that fall due fire too). */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id);
      const next = this.timers[0];
      if (!next || next.at > end) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
      await new Promise((r) => setImmediate(r));
    }
    this.t = end;
  }

  pending(): number {
    return this.timers.length;
  }
}
