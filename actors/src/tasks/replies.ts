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

  constructor(private readonly clock: Clock) {}

  /** Resolves with the envelope whose causationId is `requestId`; rejects after `timeoutMs` or when `signal` aborts. */
  await(requestId: string, timeoutMs: number, signal: AbortSignal): Promise<Envelope> {
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

  /** Hand `env` to the request it answers; false if it answers none. */
  deliver(env: Envelope): boolean {
    const ask = env.causationId ? this.asks.get(env.causationId) : undefined;
    if (!ask || !ANSWERS.has(env.type)) return false;
    ask(env);
    return true;
  }
}
