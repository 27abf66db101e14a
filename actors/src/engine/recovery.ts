import { log } from '@ao/runtime';
import type { RunRecord } from '@ao/runtime';
import type { EngineContext } from './context.js';
import { loadForResume } from './resume.js';
import type { Loaded, Resumer } from './resume.js';

/** Runs claimed per query, and resumed at once, when taking runs over. */
const CLAIM_BATCH = 100;
const RESUME_CONCURRENCY = 8;
/** How many claim batches are taken and read before their runs are resumed (a lease covers the wait: 1,000 runs resume in seconds). */
const CLAIM_AHEAD = 10;

/** Taking over runs no live node hosts (a node that died), and at start-up those this node id held before. */
export class Recovery {
  /** The claim under way (claims never overlap; shutdown waits for it). */
  claiming: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: EngineContext,
    private readonly resumer: Resumer,
  ) {}

  /**
   * Take over runs no live node hosts (and, at start-up, those this node id held before), one at
   * a time, and resume each from its latest checkpoint. Serialised: two claims never overlap.
   */
  claim(reclaimOwn: boolean): Promise<void> {
    const go = async () => {
      // Batch after batch until none is left: a node restarting after a crash may have held
      // hundreds of runs, and each waiting for the next tick would wait a lease for nothing.
      const tried = new Set<string>(); // not claimed twice in one go, even if its resume failed
      for (let more = true; more;) {
        const taken = await this.claimAhead(reclaimOwn, tried);
        if (!taken) return;
        more = taken.more;
        await this.resumeAll(taken.claimed);
      }
    };
    this.claiming = this.claiming.then(go, go);
    return this.claiming;
  }

  /**
   * Up to CLAIM_AHEAD batches are claimed and read before any of them is resumed: a resumed run
   * commits at once, and on PGlite (one statement at a time) the claim loop's reads would wait
   * behind those commits (1,000 runs in flight at a crash: ready 4.5 s, not 1.9 s). Undefined
   * when the claim must stop (shut down, or cut off from the bus).
   */
  private async claimAhead(
    reclaimOwn: boolean,
    tried: Set<string>,
  ): Promise<{ claimed: Array<{ run: RunRecord; loaded: Loaded | undefined }>; more: boolean } | undefined> {
    const { ctx } = this;
    const claimed: Array<{ run: RunRecord; loaded: Loaded | undefined }> = [];
    for (let batch = 0; batch < CLAIM_AHEAD; batch++) {
      // Cut off from the bus, this node could host nothing it takes (see Leases.renew).
      if (ctx.closed || ctx.bus.reachable === false) return undefined;
      const runs = await ctx.store.claimRuns({
        owner: ctx.nodeId,
        leaseMs: ctx.leaseMs,
        limit: CLAIM_BATCH,
        reclaimOwn,
        exclude: [...ctx.hosts.keys(), ...tried],
      });
      for (const r of runs) tried.add(r.id);
      // What the batch's resumes read (checkpoints, the events since them) in a few reads for all of it.
      let loaded: Map<string, Loaded> = new Map();
      try {
        loaded = await loadForResume(
          ctx.store,
          runs.filter((r) => r.replay === null),
        );
      } catch (e) {
        log.warn("could not read the claimed runs' checkpoints at once; reading them one by one", { component: 'engine', nodeId: ctx.nodeId, err: e });
      }
      for (const run of runs) claimed.push({ run, loaded: loaded.get(run.id) });
      if (runs.length < CLAIM_BATCH) return { claimed, more: false };
    }
    return { claimed, more: true };
  }

  /** Then a few resumes at a time. */
  private async resumeAll(claimed: Array<{ run: RunRecord; loaded: Loaded | undefined }>): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (next < claimed.length) {
        const { run, loaded } = claimed[next++]!;
        try {
          await this.resumer.resume(run, loaded);
        } catch (e) {
          log.error('could not resume the run', { component: 'engine', nodeId: this.ctx.nodeId, runId: run.id, err: e });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(RESUME_CONCURRENCY, claimed.length) }, worker));
  }
}
