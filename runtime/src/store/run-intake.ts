import { performance } from 'node:perf_hooks';
import { AoError } from '@ao/graphs';
import type { Store } from './port.js';
import type { NewRun, RunRecord } from './records.js';

interface Pending {
  run: NewRun;
  resolve: (r: RunRecord) => void;
  reject: (e: unknown) => void;
}

interface Idler {
  resolve: () => void;
  /** Released by this time (performance.now()) even if submits keep coming. */
  until: number;
}

export interface RunIntakeOptions {
  /** Runs per statement at most (a run takes ~20 bind parameters; Postgres allows 65,535). Default 500. */
  maxBatch?: number;
  /** How long the first submit of a batch waits for others at most. Default 20 ms. */
  maxWaitMs?: number;
  /**
   * After a batch of several runs, {@link RunIntake.idle} waits until no submit came (and no insert
   * ended) for this long. Default 150 ms: on a loaded machine a client's thread can be off the CPU
   * for 50 ms in the middle of its burst, and runs started then take the thread from the rest of it.
   */
  quietMs?: number;
  /** ... but never longer than this. Default 5,000 ms. */
  maxDeferMs?: number;
}

const keyReused = (run: NewRun) =>
  new AoError('AO_IDEMPOTENCY_KEY_REUSED', `tenant ${run.tenant ?? 'default'} already has a run with idempotency key ${JSON.stringify(run.idempotencyKey)}`, {
    field: 'headers.idempotency-key',
  });

/**
 * Group commit for new runs: the runs submitted together go into one insert, one statement and
 * one commit for all of them (`Store.createRuns`), so a burst of submits costs a few syncs to disk
 * instead of one each. Each submitter awaits its own run, which is committed when its promise
 * resolves (a 202 is never answered for a run that could still be lost). Errors stay with their
 * submit: an idempotency key already taken fails only its own run, and a batch whose statement
 * fails is retried one run at a time, so one bad row fails only itself.
 *
 * @example
 * const intake = new RunIntake(store);
 * const run = await intake.create({ id, graph, ... }); // stored and committed
 * await intake.idle(); // the burst it came with is stored too: start running it
 */
export class RunIntake {
  private queue: Pending[] = [];
  /** Gathering or inserting: a submit now joins the batch being gathered or the next one. */
  private active = false;
  private idlers: Idler[] = [];
  private timer: NodeJS.Timeout | undefined;
  private lastArrival = 0;
  /** When the last insert ended: while it ran, this thread read no request (PGlite runs on it). */
  private lastInsertEnd = 0;
  /** Runs in the last batch and submits since: one alone is no burst. */
  private lastBatch = 0;
  private arrivedSince = 0;
  /** Submits on their way (see `hold`): while any is, the burst is not over. */
  private holds = 0;
  private readonly o: Required<RunIntakeOptions>;

  constructor(
    private readonly store: Pick<Store, 'createRun' | 'createRuns'>,
    o: RunIntakeOptions = {},
  ) {
    this.o = { maxBatch: 500, maxWaitMs: 20, quietMs: 150, maxDeferMs: 5_000, ...o };
  }

  /** Store `run` with the others submitted meanwhile; resolves once it is committed. */
  create(run: NewRun): Promise<RunRecord> {
    this.lastArrival = performance.now();
    this.arrivedSince += 1;
    if (!this.store.createRuns) return this.store.createRun(run);
    return new Promise<RunRecord>((resolve, reject) => {
      this.queue.push({ run, resolve, reject });
      if (!this.active) {
        this.active = true;
        this.gather(0, performance.now());
      }
    });
  }

  /**
   * A submit on its way that has not reached `create` yet (the gateway takes one for each `POST
   * /runs` before it checks the tenant's cap, which may wait on the store): until the returned
   * function is called, `idle` does not count the burst as over. Without it, submits held up
   * before `create` looked like a quiet, and a burst's first runs started in its middle.
   */
  hold(): () => void {
    this.holds += 1;
    this.lastArrival = performance.now();
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.holds -= 1;
      if (!this.holds && !this.active && this.idlers.length) this.check();
    };
  }

  /**
   * Resolves once the burst of submits a run came with is stored: no insert is waiting or on its
   * way, and, unless the last batch was a single run, no submit came for `quietMs` (or `maxDeferMs`
   * passed). The engine starts the runs it took only then, so a burst of submits is all answered
   * before the first steps of its runs compete with it for the store (PGlite runs one statement
   * at a time, on this thread) and for the event loop. A lone submit's run starts at once.
   */
  idle(): Promise<void> {
    if (this.calm()) return Promise.resolve();
    return new Promise((resolve) => {
      this.idlers.push({ resolve, until: performance.now() + this.o.maxDeferMs });
      // A timer already set fires no later than this idler needs (see `check`); each idle()
      // looking at every idler again would cost a burst of n submits n² steps.
      if (!this.timer && !this.active) this.check();
    });
  }

  private calm(): boolean {
    if (this.active || this.holds) return false;
    if (this.lastBatch <= 1 && this.arrivedSince === 0) return true;
    // Quiet since the last submit AND since the last insert: requests that came while an insert
    // held the thread are still unread in their sockets, so its end counts as an arrival.
    return performance.now() - Math.max(this.lastArrival, this.lastInsertEnd) >= this.o.quietMs;
  }

  /**
   * Release the idlers whose time has come, and look again later for the others. Idlers wait
   * `maxDeferMs` each, so they are in the order of their deadlines: the first is the soonest.
   */
  private check(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const now = performance.now();
    const calm = this.calm();
    let released = 0;
    while (released < this.idlers.length && (calm || this.idlers[released]!.until <= now)) this.idlers[released++]!.resolve();
    if (released) this.idlers = this.idlers.slice(released);
    // While an insert runs, its end looks again (`flush`); while a submit is held, its release
    // (or the first idler's deadline).
    if (!this.idlers.length || this.active) return;
    const quiet = this.holds ? Infinity : this.o.quietMs - (now - Math.max(this.lastArrival, this.lastInsertEnd));
    const due = Math.min(quiet, this.idlers[0]!.until - now);
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.check();
      },
      Math.max(1, due),
    );
    // Held runs never keep a process alive that has nothing else to do.
    this.timer.unref();
  }

  /**
   * Wait while submits keep coming: turn after turn of the event loop, as long as each turn brought
   * more (a burst whose requests are still being read), up to `maxBatch` runs or `maxWaitMs`. The
   * insert cannot gather them while it runs: PGlite executes on this thread, so no request is read
   * meanwhile, and one insert per submit would be one sync to disk each.
   */
  private gather(seen: number, since: number): void {
    setImmediate(() => {
      const n = this.queue.length;
      if (n > seen && n < this.o.maxBatch && performance.now() - since < this.o.maxWaitMs) return this.gather(n, since);
      void this.flush();
    });
  }

  private async flush(): Promise<void> {
    const batch = this.queue.splice(0, this.o.maxBatch);
    this.lastBatch = batch.length;
    this.arrivedSince = this.queue.length;
    try {
      await this.insert(batch);
    } finally {
      this.lastInsertEnd = performance.now();
      if (this.queue.length) this.gather(0, performance.now());
      else {
        this.active = false;
        this.check();
      }
    }
  }

  private async insert(batch: Pending[]): Promise<void> {
    let stored: Array<RunRecord | undefined>;
    try {
      stored = await this.store.createRuns!(batch.map((p) => p.run));
    } catch (e) {
      if (batch.length === 1) return batch[0]!.reject(e);
      // Which row failed is unknown: each run alone, so only that one fails.
      await Promise.all(batch.map((p) => this.store.createRun(p.run).then(p.resolve, p.reject)));
      return;
    }
    batch.forEach((p, i) => {
      const run = stored[i];
      if (run) p.resolve(run);
      else p.reject(keyReused(p.run));
    });
  }
}
