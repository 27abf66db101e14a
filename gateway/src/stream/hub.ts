import type { FastifyBaseLogger } from 'fastify';
import { RunStream } from './run-stream.js';
import type { RunSource, RunStreamStats, StreamLimits } from './run-stream.js';
import { StatusFeed } from './status-feed.js';
import type { FrameSocket } from './writer.js';

export interface RunStreamRecord extends RunStreamStats {
  runId: string;
  after: number;
}

/** Every stream the gateway serves: per-run streams, the status feed, and what they cost (for tests and metrics). */
export class StreamHub {
  readonly feed: StatusFeed;
  private readonly active = new Set<RunStream>();
  /** The last streams that ended, newest last (at most 100). */
  readonly finished: RunStreamRecord[] = [];

  constructor(
    private readonly source: RunSource,
    readonly limits: StreamLimits,
    private readonly log: FastifyBaseLogger,
  ) {
    this.feed = new StatusFeed(source, limits, (err) => log.error({ err }, 'status feed: reading a run failed'));
  }

  /** Per-run streams open now. */
  get open(): number {
    return this.active.size;
  }

  async serveRun(socket: FrameSocket, runId: string, after: number): Promise<void> {
    const s = new RunStream(this.source, socket, runId, after, this.limits);
    this.active.add(s);
    const stats = await s.run();
    this.active.delete(s);
    this.finished.push({ runId, after, ...stats });
    if (this.finished.length > 100) this.finished.shift();
    if (stats.outcome === 'behind') this.log.info({ runId, ...stats }, 'run stream: client fell behind');
  }

  close(): void {
    this.feed.close();
  }
}
