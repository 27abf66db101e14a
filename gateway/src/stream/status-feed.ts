import type { Bus, Envelope, RunRecord, Subscription } from '@ao/runtime';
import { runSummary } from '../http/views.js';
import { CLOSE } from './frames.js';
import type { RunFrameT, StreamFrameT } from './frames.js';
import { FrameWriter } from './writer.js';
import type { FrameSocket, WriterLimits } from './writer.js';

/** Envelopes after which a run's status, node states or usage may have changed. */
const CHANGES =
  /^(run\.(started|finished|parked|migrated|waiting|resumed)|node\.(start|completed|failed|skipped|retry_scheduled)|loop\.iterated|wait\.(opened|registered|resolved)|budget\.escalated)$/;

export interface StatusSource {
  bus: Bus;
  getRun(id: string): Promise<RunRecord | undefined>;
}

interface Client {
  socket: FrameSocket;
  writer: FrameWriter;
  /** Only this tenant's runs are sent (undefined: every run). */
  tenant: string | undefined;
}

const text = (f: StreamFrameT): string => JSON.stringify(f);

/**
 * `GET /stream`: status changes of every run, for every connected client. One bus subscription
 * serves all of them and exists only while one is connected. A change is sent as the run's row
 * (read once per change, whoever listens); while a read for a run is under way further changes of
 * it are coalesced into one more read, so a busy run costs a bounded number of reads. A client
 * whose socket holds more than `maxBufferedBytes` unread is told `behind` and let go (it re-reads
 * `GET /runs` and reconnects); nothing else is queued for it.
 */
export class StatusFeed {
  private readonly clients = new Set<Client>();
  private sub: Subscription | undefined;
  private readonly reading = new Set<string>();
  private readonly again = new Map<string, string>();
  /** Clients let go for reading too slowly (tests and metrics). */
  behind = 0;

  constructor(
    private readonly source: StatusSource,
    private readonly limits: WriterLimits,
    private readonly onError: (err: unknown) => void,
  ) {}

  get size(): number {
    return this.clients.size;
  }

  add(socket: FrameSocket, tenant?: string): void {
    const c: Client = { socket, writer: new FrameWriter(socket, this.limits), tenant };
    this.clients.add(c);
    socket.on('close', () => this.remove(c));
    this.sub ??= this.source.bus.subscribe('*', (e) => this.onEnvelope(e));
    c.writer.sendNow(text({ kind: 'ready' }));
  }

  close(): void {
    for (const c of [...this.clients]) {
      this.remove(c);
      c.socket.close(CLOSE.goingAway, 'server shutting down');
    }
  }

  private remove(c: Client): void {
    this.clients.delete(c);
    if (!this.clients.size) {
      this.sub?.unsubscribe();
      this.sub = undefined;
    }
  }

  private onEnvelope(e: Envelope): void {
    if (!CHANGES.test(e.type)) return;
    if (this.reading.has(e.runId)) this.again.set(e.runId, e.type);
    else void this.refresh(e.runId, e.type);
  }

  private async refresh(runId: string, cause: string): Promise<void> {
    this.reading.add(runId);
    try {
      const run = await this.source.getRun(runId);
      if (run && this.clients.size) this.broadcast(text(this.frameOf(run, cause)), run.tenant);
    } catch (err) {
      this.onError(err);
    } finally {
      this.reading.delete(runId);
      const next = this.again.get(runId);
      if (next !== undefined) {
        this.again.delete(runId);
        void this.refresh(runId, next);
      }
    }
  }

  private frameOf(run: RunRecord, cause: string): RunFrameT {
    return { kind: 'run', cause, run: { ...runSummary(run), lastSeq: run.lastSeq, updatedAt: run.updatedAt } };
  }

  private broadcast(frame: string, tenant: string): void {
    const bytes = Buffer.byteLength(frame);
    for (const c of this.clients) {
      if (c.tenant !== undefined && c.tenant !== tenant) continue;
      if (c.writer.fits(bytes)) {
        c.writer.sendNow(frame);
        continue;
      }
      this.behind += 1;
      this.remove(c);
      c.writer.sendNow(
        text({
          kind: 'behind',
          lastSeq: null,
          error: {
            code: 'AO_STREAM_BEHIND',
            message: `the client left more than ${this.limits.maxBufferedBytes} bytes unread; reload GET /runs and reconnect`,
          },
        }),
      );
      c.socket.close(CLOSE.behind, 'behind');
    }
  }
}
