import type { NatsConnection } from '@nats-io/transport-node';
import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { AoError } from '@ao/graphs';
import type { Subscription } from '../port.js';
import { logger, sleep } from './wire.js';
import type { NatsOptions } from './wire.js';

/**
 * What the NATS bus's parts (envelopes, work queue, RPC) share: the connection, whether the bus
 * is closed, its open consumers, and the two loops every part runs on it (`retrying`, `pump`).
 */
export class NatsLink {
  closed = false;
  readonly subs = new Set<ConsumerMessages>();

  constructor(
    readonly nc: NatsConnection,
    readonly js: JetStreamClient,
    readonly o: NatsOptions,
  ) {}

  /**
   * Try `f` with exponential backoff (up to 2 s) until it succeeds (NATS may be restarting); gives
   * up (undefined) when the bus closes or `go()` turns false, and throws after `maxAttempts`.
   */
  async retrying<T>(what: string, go: () => boolean, f: () => Promise<T>, maxAttempts = Infinity): Promise<T | undefined> {
    for (let attempt = 0; ; attempt++) {
      if (this.closed || this.nc.isClosed() || !go()) return undefined;
      try {
        return await f();
      } catch (e) {
        if (this.closed) return undefined; // closed meanwhile (e.g. with NATS away): nothing to retry
        if (attempt + 1 >= maxAttempts) throw new AoError('AO_INTERNAL', `could not ${what}: ${(e as Error).message}`, { cause: e });
        if (attempt % 10 === 0) logger.warn(`could not ${what} (retrying): ${(e as Error).message}`);
        await sleep(Math.min(2_000, 50 * 2 ** Math.min(attempt, 6)));
      }
    }
  }

  /**
   * Open a consumer (retrying while NATS is away) and feed its messages to `onMessage`, one at a
   * time; if the consumer fails or ends while still wanted, open it again. `ready` resolves once
   * the first one is open.
   */
  pump(what: string, open: () => Promise<ConsumerMessages>, onMessage: (msg: JsMsg) => Promise<void>): Subscription {
    let current: ConsumerMessages | undefined;
    let stopped = false;
    let opened!: () => void;
    const ready = new Promise<void>((r) => (opened = r));
    void (async () => {
      while (!stopped && !this.closed) {
        const m = await this.retrying(what, () => !stopped, open);
        if (!m) break;
        if (stopped) {
          await m.close().catch(() => undefined);
          break;
        }
        current = m;
        this.subs.add(m);
        opened();
        try {
          for await (const msg of m) await onMessage(msg);
        } catch (e) {
          if (!stopped && !this.closed) logger.warn(`${what}: the consumer failed, opening it again`, { err: e });
        } finally {
          this.subs.delete(m);
        }
      }
      opened();
    })();
    return {
      ready,
      unsubscribe: () => {
        stopped = true;
        if (current) {
          this.subs.delete(current);
          void current.close().catch(() => undefined);
        }
      },
    };
  }
}
