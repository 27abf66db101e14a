import { AoError } from '@ao/graphs';
import { systemClock, TERMINAL_STATUSES } from '@ao/runtime';
import type { EnvelopeType, RunRecord } from '@ao/runtime';
import { SIGNAL_GAP } from '../run-watch.js';
import { within } from './context.js';
import type { EngineContext } from './context.js';
import { FOLLOW_RESYNC_MS } from './options.js';

/** The envelopes after which a run's status has moved to where `waitForRun` stops following it. */
const RUN_ENDS: ReadonlySet<string> = new Set<EnvelopeType>(['run.finished', 'run.parked', 'run.waiting']);
const settled = (run: RunRecord): boolean => TERMINAL_STATUSES.has(run.status) || run.status === 'waiting';

/**
 * Resolves with the run once it is no longer hosted here (finished, parked), or its status now.
 * A run hosted elsewhere in a cluster is followed by push: its row is read once when the
 * following has begun, then again only when a run signal says it ended (or parked, or waits),
 * when the bus says signals may have been lost (it reconnected), when this node takes the run,
 * and every `EngineOptions.followResyncMs` as a last resort (a host that died between its
 * last commit and the signal of it). It is never polled while the run is under way.
 */
export async function waitForRun(ctx: EngineContext, id: string, timeoutMs: number): Promise<RunRecord> {
  const host = ctx.hosts.get(id);
  if (host) {
    let t: NodeJS.Timeout | undefined;
    await Promise.race([
      host.done,
      new Promise((_, rej) => (t = setTimeout(() => rej(new Error(`run ${id} did not finish in ${timeoutMs} ms`)), timeoutMs))),
    ]).finally(() => clearTimeout(t));
  }
  const missing = () => new AoError('AO_RUN_NOT_FOUND', `no run ${id}`, { field: 'id' });
  // Following by the shared watch costs a map entry: it begins before the first read, which is
  // then the only one unless a signal comes. Following by a subscription of the run's envelopes
  // (a bus without signals) costs a consumer: the row is read first, to see if it is needed.
  const byWatch = ctx.bus.queue !== undefined && !host && ctx.watch !== undefined;
  if (!byWatch) {
    const run = await ctx.store.getRun(id);
    if (!run) throw missing();
    if (!ctx.bus.queue || host || settled(run)) return run;
  }
  return follow(ctx, id, timeoutMs, missing);
}

/** Follow a run hosted elsewhere until it settles: its row read at first, then on each word that it may have. */
async function follow(ctx: EngineContext, id: string, timeoutMs: number, missing: () => AoError): Promise<RunRecord> {
  const end = systemClock.now() + timeoutMs; // wall time: the timeout's timers are real ones
  const resyncMs = ctx.o.followResyncMs ?? FOLLOW_RESYNC_MS;
  // `signalled` keeps a word that came during a read, which `poke` (set only while waiting) would miss.
  let signalled = false;
  let poke: () => void = () => undefined;
  const onWord = (type: string) => {
    if (type !== SIGNAL_GAP && !RUN_ENDS.has(type)) return;
    signalled = true;
    poke();
  };
  let stop: () => void;
  if (ctx.watch) {
    stop = await ctx.watch.follow(id, onWord);
  } else {
    const sub = ctx.bus.subscribe(id, (env) => onWord(env.type));
    stop = () => sub.unsubscribe();
    await within(Math.max(1, end - systemClock.now()), sub.ready);
  }
  try {
    let run = await ctx.store.getRun(id);
    if (!run) throw missing();
    while (!settled(run)) {
      if (systemClock.now() > end) throw new Error(`run ${id} did not finish in ${timeoutMs} ms`);
      if (!signalled) {
        const woken = new Promise<void>((r) => (poke = r));
        const local = ctx.hosts.get(id);
        let t: NodeJS.Timeout | undefined;
        await Promise.race([
          woken,
          ...(local ? [local.done] : []),
          new Promise((r) => (t = setTimeout(r, Math.max(1, Math.min(resyncMs, end - systemClock.now()))))),
        ]).finally(() => clearTimeout(t));
      }
      signalled = false;
      const now = await ctx.store.getRun(id);
      if (!now) throw new AoError('AO_RUN_NOT_FOUND', `run ${id} was deleted while waiting for it`, { field: 'id' });
      run = now;
    }
    return run;
  } finally {
    stop();
  }
}
