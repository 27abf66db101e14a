import { AoError } from '@ao/graphs';
import type { Clock, Envelope, EnvelopeType } from '@ao/runtime';

/** Envelopes that answer a busy actor's request (a budget decision, an answer from a person). */
export const ANSWERS: ReadonlySet<string> = new Set<EnvelopeType>(['budget.granted', 'budget.refused', 'budget.held', 'budget.waiting', 'wait.resolved']);
/**
 * Answers that say the decision is still to come: the budget holds the request for a person
 * (`budget.held`), or waits for calls in flight to settle (`budget.waiting`). The request stays
 * awaited, without its timeout (the run's wall clock or a person's wait bounds it).
 */
export const INTERIM: ReadonlySet<string> = new Set<EnvelopeType>(['budget.held', 'budget.waiting']);

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

  /**
   * Resolves with the envelope whose causationId is `requestId`; rejects after `timeoutMs` or when
   * `signal` aborts. An interim answer (INTERIM) is told to `onInterim` and the request stays
   * awaited without the timeout, until its final answer.
   */
  await(requestId: string, timeoutMs: number, signal: AbortSignal, onInterim?: (env: Envelope) => void): Promise<Envelope> {
    const kept = this.early.get(requestId);
    if (kept) {
      this.early.delete(requestId);
      if (!INTERIM.has(kept.type)) return Promise.resolve(kept);
      onInterim?.(kept);
      timeoutMs = Infinity;
    }
    return new Promise<Envelope>((resolve, reject) => {
      let cancel: () => void = () => undefined;
      const done = () => {
        this.asks.delete(requestId);
        cancel();
        signal.removeEventListener('abort', onAbort);
      };
      const onAbort = () => (done(), reject(signal.reason));
      if (signal.aborted) return onAbort();
      if (Number.isFinite(timeoutMs)) {
        cancel = this.clock.setTimer(timeoutMs, () => {
          done();
          reject(new AoError('AO_BUDGET_UNAVAILABLE', `no budget decision within ${timeoutMs} ms`));
        });
      }
      signal.addEventListener('abort', onAbort, { once: true });
      this.asks.set(requestId, (env) => {
        if (INTERIM.has(env.type)) {
          // Decided later: no timeout from now on (a person, or the run's wall clock, bounds it).
          cancel();
          cancel = () => undefined;
          onInterim?.(env);
          return;
        }
        done();
        resolve(env);
      });
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
