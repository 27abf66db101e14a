import { AoError } from '@ao/graphs';
import type { Clock, Envelope } from '@ao/runtime';

/** Envelopes that answer a busy actor's request (a budget decision, an answer from a person). */
export const ANSWERS: ReadonlySet<string> = new Set(['budget.granted', 'budget.refused', 'budget.held', 'wait.resolved']);

/**
 * Requests of a run's busy actors waiting for their answers: an actor asks (e.g. the budget actor)
 * from inside its own handler, so the answer cannot come through its mailbox; whoever routes the
 * run's envelopes hands answers here first.
 */
export class Replies {
  private readonly asks = new Map<string, (env: Envelope) => void>();
  /** Answers that came before their request was awaited (kept only with `keepEarly`). */
  private readonly early = new Map<string, Envelope>();

  /**
   * `keepEarly`: keep answers nobody awaits yet, for a request about to be awaited. A node task
   * re-run from its start subscribes to the run before it replays its recorded effects, so the
   * answer to a request its earlier delivery made may arrive before the re-run asks again.
   */
  constructor(
    private readonly clock: Clock,
    private readonly keepEarly = false,
  ) {}

  /** Resolves with the envelope whose causationId is `requestId`; rejects after `timeoutMs` or when `signal` aborts. */
  await(requestId: string, timeoutMs: number, signal: AbortSignal): Promise<Envelope> {
    const kept = this.early.get(requestId);
    if (kept) {
      // A held request's final answer comes later: keep waiting for that one.
      this.early.delete(requestId);
      if (kept.type !== 'budget.held') return Promise.resolve(kept);
    }
    return new Promise<Envelope>((resolve, reject) => {
      const done = () => {
        this.asks.delete(requestId);
        cancel();
        signal.removeEventListener('abort', onAbort);
      };
      const onAbort = () => (done(), reject(signal.reason));
      // An answer from a person has no timeout here (the wait's own timeout answers it).
      const cancel = Number.isFinite(timeoutMs)
        ? this.clock.setTimer(timeoutMs, () => {
            done();
            reject(new AoError('AO_BUDGET_UNAVAILABLE', `no budget decision within ${timeoutMs} ms`));
          })
        : () => undefined;
      signal.addEventListener('abort', onAbort, { once: true });
      this.asks.set(requestId, (env) => (done(), resolve(env)));
    });
  }

  /** Hand `env` to the request it answers (or keep it for one about to be awaited); false if neither. */
  deliver(env: Envelope): boolean {
    if (!env.causationId || !ANSWERS.has(env.type)) return false;
    const ask = this.asks.get(env.causationId);
    if (ask) ask(env);
    else if (this.keepEarly) this.early.set(env.causationId, env);
    else return false;
    return true;
  }
}
