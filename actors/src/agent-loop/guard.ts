import { AoError, isAoError } from '@ao/graphs';
import type { Clock } from '@ao/runtime';

/**
 * Run `fn` with a signal that aborts when the node's `timeoutSec` passes (AO_NODE_TIMEOUT,
 * retryable) or when `stop` aborts (the actor was stopped because the run ended).
 */
export async function guarded<T>(clock: Clock, timeoutSec: number | undefined, stop: AbortSignal, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const onStop = () => ac.abort(stop.reason);
  if (stop.aborted) onStop();
  else stop.addEventListener('abort', onStop, { once: true });
  const cancel =
    timeoutSec === undefined
      ? () => {}
      : clock.setTimer(timeoutSec * 1000, () => ac.abort(new AoError('AO_NODE_TIMEOUT', `timed out after ${timeoutSec}s`, { retryable: true })));
  try {
    return await new Promise<T>((resolve, reject) => {
      // Settle on abort even if `fn` ignores its signal: a stuck call cannot hold the node.
      ac.signal.addEventListener('abort', () => reject(ac.signal.reason), { once: true });
      fn(ac.signal).then(resolve, reject);
    });
  } finally {
    cancel();
    stop.removeEventListener('abort', onStop);
  }
}

/** Whether trying again may help: timeouts, model/transport failures and unknown errors may; bad graphs or args do not. */
export function isRetryable(e: unknown): boolean {
  if (!isAoError(e)) return true;
  return e.retryable || e.code === 'AO_NODE_TIMEOUT' || e.code === 'AO_LLM_FAILED' || e.code === 'AO_TOOL_FAILED';
}
