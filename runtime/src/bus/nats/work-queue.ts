import { DeliverPolicy } from '@nats-io/jetstream';
import type { ConsumerMessages, JetStreamClient, JsMsg } from '@nats-io/jetstream';
import { AoError } from '@ao/graphs';
import { isoNow } from '../../clock/mod.js';
import type { Subscription, WorkHandler, WorkQueue } from '../port.js';
import type { NatsLink } from './link.js';
import { dec, enc, logger, sleep } from './wire.js';

/**
 * The work queues over JetStream: items (run starts, node tasks) go on the `<P>_WORK` work-queue
 * stream and are pulled by every node through one durable consumer per queue, acknowledged
 * explicitly; a failing item is redelivered with backoff, then parked on `<p>.dlq.<queue>` in the
 * `<P>_DLQ` stream, where an operator can see it.
 */
export class NatsWorkQueue implements WorkQueue {
  constructor(private readonly link: NatsLink) {}

  consume(queue: 'runs' | 'tasks', handler: WorkHandler, c?: { concurrency?: number }): Subscription {
    return (c?.concurrency ?? 1) > 1 ? this.pull(queue, handler, c!.concurrency!) : this.consumeOne(queue, handler);
  }

  async enqueue(queue: 'runs' | 'tasks', id: string, payload: unknown): Promise<void> {
    const data = enc.encode(JSON.stringify(payload));
    // Bounded (about a minute): the caller is a request waiting for its answer.
    const done = await this.link.retrying(
      `enqueue ${queue} item ${id}`,
      () => true,
      () => this.link.js.publish(`${this.link.o.prefix}.work.${queue}`, data, { msgID: `${queue}:${id}`, timeout: 5_000 }),
      40,
    );
    if (!done) throw new AoError('AO_INTERNAL', `could not enqueue ${queue} item ${id}: the bus is closed`);
  }

  /**
   * Pull a queue's items and hand each to `handler`: acknowledged when it resolves, redelivered
   * with backoff when it throws, parked on the dead-letter subject after `maxDeliver` tries.
   */
  private consumeOne(queue: 'runs' | 'tasks', handler: WorkHandler): Subscription {
    const { js, o } = this.link;
    return this.link.pump(
      `consume ${queue}`,
      async () => {
        const consumer = await js.consumers.get(`${o.prefix.toUpperCase()}_WORK`, `${o.prefix}-${queue}`);
        return consumer.consume({ max_messages: 64, expires: 5_000, idle_heartbeat: 1_000 });
      },
      (msg) => this.work(queue, msg, handler),
    );
  }

  /**
   * Pull a queue's items `concurrency` at a time: an item is fetched only when a slot is free (a
   * fetched item's ack timer runs, so none may wait behind busy ones), and each runs on its own.
   */
  private pull(queue: 'runs' | 'tasks', handler: WorkHandler, concurrency: number): Subscription {
    const link = this.link;
    let stopped = false;
    let active = 0;
    let freed: (() => void) | undefined;
    let batch: ConsumerMessages | undefined;
    let opened!: () => void;
    const ready = new Promise<void>((r) => (opened = r));
    const what = `consume ${queue}`;
    void (async () => {
      let consumer: Awaited<ReturnType<JetStreamClient['consumers']['get']>> | undefined;
      while (!stopped && !link.closed) {
        consumer ??= await link.retrying(
          what,
          () => !stopped,
          () => link.js.consumers.get(`${link.o.prefix.toUpperCase()}_WORK`, `${link.o.prefix}-${queue}`),
        );
        if (!consumer) break;
        opened();
        while (active >= concurrency && !stopped) await new Promise<void>((r) => (freed = r));
        if (stopped || link.closed) break;
        try {
          batch = await consumer.fetch({ max_messages: concurrency - active, expires: 5_000, idle_heartbeat: 1_000 });
          for await (const msg of batch) {
            // Unsubscribed while the fetch was open: hand it back at once.
            if (stopped) {
              msg.nak();
              continue;
            }
            active += 1;
            void this.work(queue, msg, handler)
              .catch((e: unknown) => logger.error(`${what}: could not settle an item: ${(e as Error).message}`))
              .finally(() => {
                active -= 1;
                freed?.();
              });
          }
        } catch (e) {
          if (stopped || link.closed) break;
          logger.warn(`${what}: a fetch failed (${(e as Error).message}); fetching again`);
          consumer = undefined;
          await sleep(500);
        } finally {
          batch = undefined;
        }
      }
      opened();
    })();
    return {
      ready,
      unsubscribe: () => {
        stopped = true;
        freed?.();
        void batch?.close().catch(() => undefined);
      },
    };
  }

  /** One work item: acknowledged when its handler resolves, redelivered with backoff when it throws, parked after `maxDeliver`. */
  private async work(queue: 'runs' | 'tasks', msg: JsMsg, handler: WorkHandler): Promise<void> {
    const tries = msg.info.deliveryCount;
    let payload: unknown;
    try {
      payload = JSON.parse(dec.decode(msg.data));
    } catch {
      payload = undefined;
    }
    try {
      if (payload === undefined) throw new Error('not JSON');
      const keepAlive = setInterval(() => msg.working(), Math.max(1_000, this.link.o.ackWaitMs / 3));
      try {
        await handler(payload, { deliveries: tries });
      } finally {
        clearInterval(keepAlive);
      }
      msg.ack();
    } catch (e) {
      if (tries < this.link.o.maxDeliver) return void msg.nak(Math.min(30_000, 200 * 2 ** (tries - 1)));
      // Parked where an operator can see it (`<P>_DLQ`), then removed from the work queue; if
      // even that fails, it stays in the queue and comes back.
      const dead = { queue, payload: payload ?? dec.decode(msg.data), error: (e as Error).message, deliveries: tries, at: isoNow() };
      const prefix = this.link.o.prefix;
      try {
        await this.link.js.publish(`${prefix}.dlq.${queue}`, enc.encode(JSON.stringify(dead)), { timeout: 5_000 });
      } catch (dlq) {
        logger.error(`could not park a ${queue} item (${(dlq as Error).message}); it will be redelivered`);
        return void msg.nak(30_000);
      }
      logger.error(`${queue} item parked on ${prefix}.dlq.${queue} after ${tries} deliveries: ${(e as Error).message}`);
      msg.ack();
    }
  }

  /** Dead-lettered items of a queue (for operators and tests). */
  async deadLetters(queue: 'runs' | 'tasks'): Promise<unknown[]> {
    const { js, o } = this.link;
    const consumer = await js.consumers.get(`${o.prefix.toUpperCase()}_DLQ`, {
      filter_subjects: `${o.prefix}.dlq.${queue}`,
      deliver_policy: DeliverPolicy.All,
    });
    const out: unknown[] = [];
    const batch = await consumer.fetch({ max_messages: 1000, expires: 1_000 });
    for await (const m of batch) {
      out.push(JSON.parse(dec.decode(m.data)));
      if (m.info.pending === 0) break;
    }
    return out;
  }
}
