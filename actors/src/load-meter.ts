import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { IntervalHistogram } from 'node:perf_hooks';
import type { NodeLoad } from '@ao/runtime';

/** This process's load between two reads: CPU used over wall time, event-loop delay p99, memory. */
export class LoadMeter {
  private cpu = process.cpuUsage();
  private at = process.hrtime.bigint();
  private readonly delay: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });

  constructor() {
    this.delay.enable();
  }

  /** The load since the previous read (or since start), and start a new interval. */
  read(): NodeLoad {
    const now = process.hrtime.bigint();
    const used = process.cpuUsage(this.cpu);
    const wallUs = Number(now - this.at) / 1_000;
    this.cpu = process.cpuUsage();
    this.at = now;
    const p99 = this.delay.count ? this.delay.percentile(99) / 1e6 : 0;
    this.delay.reset();
    return {
      cpu: wallUs > 0 ? Math.round(((used.user + used.system) / wallUs) * 1_000) / 1_000 : 0,
      eventLoopDelayMs: Math.round(p99 * 10) / 10,
      rssBytes: process.memoryUsage.rss(),
    };
  }

  close(): void {
    this.delay.disable();
  }
}
