import { AoError, isAoError } from '@ao/graphs';
import type { Clock } from '../../clock/mod.js';

/** How an HTTP adapter times out and retries one model call. */
export interface HttpPolicy {
  /** Longest one attempt may take, from sending the request to the last byte of the answer. */
  readonly timeoutMs: number;
  /** Longest a streamed answer may go without a byte before the attempt counts as hung. */
  readonly idleTimeoutMs: number;
  /** Retries after the first attempt, on 408/409/429/5xx, timeouts and network failures. */
  readonly maxRetries: number;
  /** Delay before the first retry without a Retry-After; doubled on each further retry. */
  readonly baseDelayMs: number;
  /** Longest wait between attempts: a Retry-After beyond it fails the call now (AO_LLM_RATE_LIMITED). */
  readonly maxDelayMs: number;
  readonly clock: Clock;
}

export const DEFAULT_HTTP_POLICY: Omit<HttpPolicy, 'clock'> = {
  timeoutMs: 120_000,
  idleTimeoutMs: 30_000,
  maxRetries: 3,
  baseDelayMs: 500,
  maxDelayMs: 60_000,
};

/** A provider answered with a status that is not 2xx. */
export class HttpStatusError extends Error {
  constructor(
    readonly status: number,
    readonly body: string,
    /** From `retry-after-ms` or `Retry-After` (seconds or an HTTP date), when the provider sent one. */
    readonly retryAfterMs: number | undefined,
  ) {
    super(`HTTP ${status}${body ? `: ${body.slice(0, 500)}` : ''}`);
    this.name = 'HttpStatusError';
  }
}

/** One attempt ran out of time (`timeoutMs`, or `idleTimeoutMs` mid-stream). */
export class AttemptTimeoutError extends Error {
  constructor(
    readonly kind: 'total' | 'idle',
    ms: number,
  ) {
    super(kind === 'total' ? `no complete answer within ${ms} ms` : `the streamed answer stalled for ${ms} ms`);
    this.name = 'AttemptTimeoutError';
  }
}

const RETRY_STATUS = new Set([408, 409, 425, 429, 500, 502, 503, 504, 529]);

/** Parse `retry-after-ms` (OpenAI) or `Retry-After` (seconds, or an HTTP date). */
export function retryAfterMs(headers: Headers, now: number): number | undefined {
  const ms = Number(headers.get('retry-after-ms'));
  if (headers.get('retry-after-ms') !== null && Number.isFinite(ms) && ms >= 0) return ms;
  const v = headers.get('retry-after');
  if (v === null || v.trim() === '') return undefined;
  const secs = Number(v);
  if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Throw {@link HttpStatusError} for a non-2xx response (its body read, bounded). */
export async function checkStatus(res: Response, clock: Clock): Promise<Response> {
  if (res.ok) return res;
  const body = (await res.text().catch(() => '')).slice(0, 2000);
  throw new HttpStatusError(res.status, body, retryAfterMs(res.headers, clock.now()));
}

export function abortError(signal: AbortSignal): Error {
  const err = new Error('The LLM call was aborted', { cause: signal.reason });
  err.name = 'AbortError';
  return err;
}

/** What one attempt gets: a signal that aborts on the caller's abort and on the attempt's timeouts. */
export interface Attempt {
  readonly signal: AbortSignal;
  readonly number: number;
  /** Call on every byte received: keeps a streamed answer from counting as stalled. */
  touch(): void;
}

/**
 * Run `attempt` until it succeeds, retrying transient failures (see {@link HttpPolicy}) with
 * exponential backoff or the provider's Retry-After. The caller's `signal` (the budget actor's
 * stop, a node timeout, a cancel) ends everything at once, including a backoff sleep.
 *
 * @throws AoError `AO_LLM_RATE_LIMITED` (429 after the retries, or a Retry-After too long),
 * `AO_LLM_TIMEOUT`, or `AO_LLM_FAILED`; an error named `AbortError` when `signal` aborted.
 */
export async function withRetries<T>(
  provider: string,
  policy: HttpPolicy,
  signal: AbortSignal | undefined,
  attempt: (a: Attempt) => Promise<T>,
  o: { rateLimited?: 'retry' | 'throw' | undefined } = {},
): Promise<T> {
  for (let n = 1; ; n++) {
    if (signal?.aborted) throw abortError(signal);
    const ac = new AbortController();
    const onAbort = () => ac.abort(signal!.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    const cancelTotal = policy.clock.setTimer(policy.timeoutMs, () => ac.abort(new AttemptTimeoutError('total', policy.timeoutMs)));
    let cancelIdle = () => {};
    const touch = () => {
      cancelIdle();
      cancelIdle = policy.clock.setTimer(policy.idleTimeoutMs, () => ac.abort(new AttemptTimeoutError('idle', policy.idleTimeoutMs)));
    };
    let failure: unknown;
    try {
      // A stuck body read may ignore the signal; settle on abort anyway.
      return await new Promise<T>((resolve, reject) => {
        ac.signal.addEventListener('abort', () => reject(ac.signal.reason), { once: true });
        attempt({ signal: ac.signal, number: n, touch }).then(resolve, reject);
      });
    } catch (e) {
      failure = ac.signal.aborted && !signal?.aborted ? ac.signal.reason : e;
    } finally {
      cancelTotal();
      cancelIdle();
      signal?.removeEventListener('abort', onAbort);
    }
    if (signal?.aborted) throw abortError(signal);
    const { retry, delayMs, error } = classify(provider, failure, n, policy);
    // A 429 the caller retries itself (through its limiter: the retry is a request like any other).
    if (o.rateLimited === 'throw' && failure instanceof HttpStatusError && failure.status === 429) throw error;
    if (!retry) throw error;
    try {
      await policy.clock.sleep(delayMs, signal);
    } catch {
      throw abortError(signal!);
    }
  }
}

function classify(provider: string, e: unknown, n: number, p: HttpPolicy): { retry: boolean; delayMs: number; error: AoError } {
  const backoff = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** (n - 1));
  const last = n > p.maxRetries;
  if (isAoError(e)) return { retry: false, delayMs: 0, error: e };
  if (e instanceof HttpStatusError) {
    const transient = RETRY_STATUS.has(e.status);
    const code = e.status === 429 ? 'AO_LLM_RATE_LIMITED' : 'AO_LLM_FAILED';
    const details = { provider, status: e.status, attempts: n, ...(e.retryAfterMs !== undefined ? { retryAfterMs: e.retryAfterMs } : {}) };
    if (transient && e.retryAfterMs !== undefined && e.retryAfterMs > p.maxDelayMs) {
      const error = new AoError(
        code,
        `${provider}: HTTP ${e.status}, retry after ${Math.ceil(e.retryAfterMs / 1000)} s (more than the ${p.maxDelayMs} ms allowed)`,
        { details, retryable: true, cause: e },
      );
      return { retry: false, delayMs: 0, error };
    }
    // 4xx other than the transient ones (a bad request, a bad key) fail the same way again.
    const error = new AoError(code, `${provider}: ${e.message}${transient ? ` (after ${n} attempts)` : ''}`, { details, retryable: transient, cause: e });
    return { retry: transient && !last, delayMs: e.retryAfterMs ?? backoff, error };
  }
  if (e instanceof AttemptTimeoutError) {
    const error = new AoError('AO_LLM_TIMEOUT', `${provider}: ${e.message} (after ${n} attempts)`, {
      details: { provider, attempts: n, kind: e.kind },
      retryable: true,
      cause: e,
    });
    return { retry: !last, delayMs: backoff, error };
  }
  if (e instanceof ProviderError) {
    return {
      retry: e.transient && !last,
      delayMs: backoff,
      error: new AoError('AO_LLM_FAILED', `${provider}: ${e.message}`, { details: { provider, attempts: n }, retryable: e.transient, cause: e }),
    };
  }
  // fetch failed: refused, reset, DNS. Transient as far as we can tell.
  const message = e instanceof Error ? `${e.message}${e.cause instanceof Error ? ` (${e.cause.message})` : ''}` : String(e);
  return {
    retry: !last,
    delayMs: backoff,
    error: new AoError('AO_LLM_FAILED', `${provider}: ${message} (after ${n} attempts)`, { details: { provider, attempts: n }, retryable: true, cause: e }),
  };
}

/** A provider's answer that is an error although the status was 2xx (e.g. an `error` event mid-stream). */
export class ProviderError extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
  ) {
    super(message);
    this.name = 'ProviderError';
  }
}
