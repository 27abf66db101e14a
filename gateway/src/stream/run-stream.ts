import { payloadField, RunStatusSchema, TERMINAL_STATUSES } from '@ao/runtime';
import type { Bus, DeltaEvent, Envelope, RunRecord, RunStatus, Subscription } from '@ao/runtime';
import { CLOSE } from './frames.js';
import type { StreamFrameT } from './frames.js';
import { FrameWriter } from './writer.js';
import type { FrameSocket, WriterLimits } from './writer.js';

export interface StreamLimits extends WriterLimits {
  /** Most bytes of live envelopes a connection may queue while its socket is full; past it the client fell behind. */
  maxQueuedBytes: number;
  /** Envelopes read from the store per page while catching up. */
  pageSize: number;
  /**
   * With no live envelope for this long, look in the store anyway: a run hosted by another node
   * publishes on that node's bus, and its envelopes reach this one only through the log.
   */
  pollMs: number;
}

export const DEFAULT_STREAM_LIMITS: StreamLimits = {
  maxBufferedBytes: 1024 * 1024,
  maxQueuedBytes: 4 * 1024 * 1024,
  stallMs: 10_000,
  pageSize: 500,
  pollMs: 1000,
};

/** The log and the bus, as the run stream reads them (and, when the runtime streams answers, its deltas). */
export interface RunSource {
  bus: Bus;
  deltas?: { subscribe(runId: string, handler: (d: DeltaEvent) => void): { unsubscribe(): void } };
  listEvents(runId: string, q: { after: number; limit: number }): Promise<Envelope[]>;
  getRun(id: string): Promise<RunRecord | undefined>;
}

/** A run has ended once it finished or was parked for a person: its log takes no more events. */
export const isEnded = (status: RunStatus): boolean => TERMINAL_STATUSES.has(status) || status === 'waiting';
function endStatusOf(e: Envelope): RunStatus | undefined {
  if (e.type === 'run.parked') return 'waiting';
  if (e.type !== 'run.finished') return undefined;
  // Any writer's `run.finished` ends the stream: its status is read alone (an old log's payload may not fit today's schema).
  const status = RunStatusSchema.safeParse(payloadField(e.payload, 'status'));
  return status.success ? status.data : undefined;
}

/** The frame text of an envelope, made once however many streams send it (the bus hands all of them the same object). */
const frameText = new WeakMap<Envelope, string>();
function envelopeFrame(e: Envelope): string {
  let s = frameText.get(e);
  if (s === undefined) {
    s = `{"kind":"envelope","envelope":${JSON.stringify(e)}}`;
    frameText.set(e, s);
  }
  return s;
}
const frame = (f: StreamFrameT): string => JSON.stringify(f);

export interface RunStreamStats {
  peakBufferedBytes: number;
  peakQueuedBytes: number;
  sent: number;
  outcome: 'open' | 'ended' | 'behind' | 'closed' | 'error';
  /** Answer deltas sent, and dropped because the client's socket was full. */
  deltasSent: number;
  deltasDropped: number;
}

/**
 * One client's stream of one run: the stored envelopes after `after`, then the live ones, in seq
 * order with no gap and no duplicate, then an `end` frame.
 *
 * The bus subscription is taken before the first read of the log, so whatever commits after that
 * read is also queued live; the seq sorts out the overlap (an envelope at or below the last one
 * sent is dropped, one past a gap sends the stream back to the log). The log is read a page at a
 * time, each page only after the previous one was flushed, so catching up on a long run holds one
 * page; live envelopes wait in a queue bounded by bytes. A client that does not keep up is told
 * `behind` with the last seq sent and is disconnected, which frees everything held for it.
 */
export class RunStream {
  private lastSent: number;
  private readonly writer: FrameWriter;
  private queue: Array<{ env: Envelope; bytes: number }> = [];
  private queuedBytes = 0;
  private catchingUp = true;
  /** Live envelopes were dropped while catching up: read the log once more before going live. */
  private dropped = false;
  private wake: (() => void) | undefined;
  private sub: Subscription | undefined;
  readonly stats: RunStreamStats = { peakBufferedBytes: 0, peakQueuedBytes: 0, sent: 0, outcome: 'open', deltasSent: 0, deltasDropped: 0 };
  private deltaSub: { unsubscribe(): void } | undefined;

  constructor(
    private readonly source: RunSource,
    private readonly socket: FrameSocket,
    readonly runId: string,
    after: number,
    private readonly limits: StreamLimits,
  ) {
    this.lastSent = after;
    this.writer = new FrameWriter(socket, limits);
    socket.on('close', () => this.stop('closed'));
  }

  private get done(): boolean {
    return this.stats.outcome !== 'open';
  }

  /** Stream until the run ends, the client leaves or falls behind. Never throws. */
  async run(): Promise<RunStreamStats> {
    this.sub = this.source.bus.subscribe(this.runId, (e) => this.onLive(e));
    this.deltaSub = this.source.deltas?.subscribe(this.runId, (d) => this.onDelta(d));
    try {
      await this.catchUp();
      while (!this.done) {
        const next = this.queue.shift();
        if (!next) {
          // Quiet: wait for the bus, and look in the log now and then (see `pollMs`).
          if (!(await this.waitForLive())) await this.catchUp();
          continue;
        }
        this.queuedBytes -= next.bytes;
        if (next.env.seq <= this.lastSent) continue;
        if (next.env.seq > this.lastSent + 1) await this.catchUp();
        else if (!(await this.send(next.env))) this.behind();
      }
    } catch (err) {
      if (!this.done) {
        this.writer.sendNow(frame({ kind: 'error', error: { code: 'AO_INTERNAL', message: (err as Error).message } }));
        this.stop('error');
        this.socket.close(CLOSE.error, 'stream failed');
      }
    } finally {
      this.release();
    }
    return this.stats;
  }

  private onLive(e: Envelope): void {
    if (this.done || e.seq <= this.lastSent) return;
    const bytes = Buffer.byteLength(envelopeFrame(e));
    if (this.queuedBytes + bytes > this.limits.maxQueuedBytes) {
      if (this.catchingUp) {
        // Reading the log already: it holds these too. Drop them and read on afterwards.
        this.queue = [];
        this.queuedBytes = 0;
        this.dropped = true;
        return;
      }
      this.behind();
      return;
    }
    this.queue.push({ env: e, bytes });
    this.queuedBytes += bytes;
    this.stats.peakQueuedBytes = Math.max(this.stats.peakQueuedBytes, this.queuedBytes);
    this.wake?.();
  }

  /** True when something arrived (or the stream stopped), false after `pollMs` of quiet. */
  private waitForLive(): Promise<boolean> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = undefined;
        resolve(false);
      }, this.limits.pollMs);
      this.wake = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve(true);
      };
    });
  }

  /** Send what the log holds after the last seq sent, page by page, then check whether the run has ended. */
  private async catchUp(): Promise<void> {
    this.catchingUp = true;
    try {
      do {
        this.dropped = false;
        for (;;) {
          const page = await this.source.listEvents(this.runId, { after: this.lastSent, limit: this.limits.pageSize });
          for (const e of page) {
            if (this.done) return;
            if (!(await this.send(e))) return this.behind();
          }
          if (page.length < this.limits.pageSize) break;
        }
      } while (this.dropped && !this.done);
    } finally {
      this.catchingUp = false;
    }
    if (this.done) return;
    // Caught up with no run.finished seen: the run may have ended before `after`, or on another node.
    const run = await this.source.getRun(this.runId);
    if (run && isEnded(run.status) && run.lastSeq <= this.lastSent) this.end(run.status);
  }

  /** False when the envelope could not be sent: the client stalled or left. */
  private async send(e: Envelope): Promise<boolean> {
    if (!(await this.writer.write(envelopeFrame(e)))) return false;
    this.lastSent = e.seq;
    this.stats.sent += 1;
    this.stats.peakBufferedBytes = this.writer.peakBufferedBytes;
    const status = endStatusOf(e);
    if (status) this.end(status);
    return true;
  }

  private end(status: RunStatus): void {
    if (this.done) return;
    this.writer.sendNow(frame({ kind: 'end', runId: this.runId, status, lastSeq: this.lastSent }));
    this.stop('ended');
    this.socket.close(CLOSE.normal, 'run ended');
  }

  /** Tell the client it fell behind and let it go; it resumes with `after` = the last seq it got. */
  private behind(): void {
    if (this.done) return;
    if (!this.writer.open) return this.stop('closed');
    const message = `the client read too slowly (more than ${this.limits.maxBufferedBytes} bytes unread in its socket and ${this.limits.maxQueuedBytes} queued, or none read for ${this.limits.stallMs} ms); reconnect with after=<last seq received>`;
    this.writer.sendNow(frame({ kind: 'behind', lastSeq: this.lastSent, error: { code: 'AO_STREAM_BEHIND', message } }));
    this.stop('behind');
    // What is still buffered (within the bound) goes out before the close; a client that reads
    // nothing does not answer it either, and the socket is destroyed after ws's close timeout (30 s).
    this.socket.close(CLOSE.behind, 'behind');
  }

  private stop(outcome: RunStreamStats['outcome']): void {
    if (this.done) return;
    this.stats.outcome = outcome;
    this.stats.peakBufferedBytes = this.writer.peakBufferedBytes;
    this.release();
    this.wake?.();
  }

  /** An answer being written: sent at once if the socket has room, dropped otherwise (never queued: the envelope that follows holds it all). */
  private onDelta(d: DeltaEvent): void {
    if (this.done) return;
    const text = frame({ kind: 'delta', runId: d.runId, key: d.key, actor: d.actor, attempt: d.attempt, index: d.index, text: d.text });
    if (!this.writer.open || !this.writer.fits(text.length)) {
      this.stats.deltasDropped += 1;
      return;
    }
    this.writer.sendNow(text);
    this.stats.deltasSent += 1;
  }

  private release(): void {
    this.sub?.unsubscribe();
    this.sub = undefined;
    this.deltaSub?.unsubscribe();
    this.deltaSub = undefined;
    this.queue = [];
    this.queuedBytes = 0;
  }
}
