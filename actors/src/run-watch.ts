import type { Bus, Subscription } from '@ao/runtime';

/** What a follower is woken with when signals may have been lost (the bus reconnected): not an envelope type. */
export const SIGNAL_GAP = 'gap';

/**
 * Followers of runs hosted elsewhere, woken by the bus's run signals: one subscription for every
 * run this process waits on (opened at the first wait, closed with the engine), where following a
 * run used to open a JetStream consumer of all its envelopes. Signals are at most once: when the
 * bus says some may have been lost (it reconnected), every follower is woken with
 * {@link SIGNAL_GAP}, so it reads its run's row again.
 */
export class RunWatch {
  private sub: Subscription | undefined;
  private readonly waiters = new Map<string, Set<(type: string) => void>>();

  constructor(private readonly bus: Bus & Required<Pick<Bus, 'watchRuns'>>) {}

  /** Call `wake` with the type of each run-level envelope of `runId` (or {@link SIGNAL_GAP}) until the returned function is called. */
  async follow(runId: string, wake: (type: string) => void): Promise<() => void> {
    this.sub ??= this.bus.watchRuns(
      (s) => {
        for (const w of this.waiters.get(s.runId) ?? []) w(s.type);
      },
      {
        onGap: () => {
          for (const set of [...this.waiters.values()]) for (const w of [...set]) w(SIGNAL_GAP);
        },
      },
    );
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
