import type { Bus, Subscription } from '@ao/runtime';

/**
 * Followers of runs hosted elsewhere, woken by the bus's run signals: one subscription for every
 * run this process waits on (opened at the first wait, closed with the engine), where following a
 * run used to open a JetStream consumer of all its envelopes. Signals are at most once, so a
 * follower still re-reads the run's row now and then; a signal only makes it read at once.
 */
export class RunWatch {
  private sub: Subscription | undefined;
  private readonly waiters = new Map<string, Set<(type: string) => void>>();

  constructor(private readonly bus: Bus & Required<Pick<Bus, 'watchRuns'>>) {}

  /** Call `wake` with the type of each run-level envelope of `runId` until the returned function is called. */
  async follow(runId: string, wake: (type: string) => void): Promise<() => void> {
    this.sub ??= this.bus.watchRuns((s) => {
      for (const w of this.waiters.get(s.runId) ?? []) w(s.type);
    });
    let set = this.waiters.get(runId);
    if (!set) this.waiters.set(runId, (set = new Set()));
    set.add(wake);
    await this.sub.ready;
    return () => {
      set.delete(wake);
      if (!set.size && this.waiters.get(runId) === set) this.waiters.delete(runId);
    };
  }

  /** Runs followed now (tests). */
  get size(): number {
    return this.waiters.size;
  }

  close(): void {
    this.sub?.unsubscribe();
    this.sub = undefined;
    this.waiters.clear();
  }
}
