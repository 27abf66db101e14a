import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { KV } from '@nats-io/kv';
import { AoError } from '@ao/graphs';
import { nanos } from './wire.js';
import type { NatsBusOptions, NatsOptions } from './wire.js';

/** A connection to NATS with the bus's streams, consumers and bucket in place. */
export interface NatsSetup {
  nc: NatsConnection;
  jsm: JetStreamManager;
  kv: KV;
  o: NatsOptions;
}

/** Connect and create the streams, the consumers and the bucket if missing. */
export async function setUpNats(opts: NatsBusOptions): Promise<NatsSetup> {
  const o = { maxDeliver: 5, ackWaitMs: 30_000, nodeTtlMs: 10_000, ...opts };
  if (!/^[A-Za-z0-9_-]{1,32}$/.test(o.prefix))
    throw new AoError('AO_CONFIG_INVALID', `AO_NATS_PREFIX must be 1-32 letters, digits, _ or -, got ${JSON.stringify(o.prefix)}`, { field: 'AO_NATS_PREFIX' });
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: o.url,
      name: o.name ?? 'agent-orchestrator',
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      timeout: 5_000,
      // A silent partition is noticed in about 15 s (the default pings every 2 minutes): the
      // engine then stops renewing its leases, and other nodes take its runs over.
      pingInterval: 5_000,
      maxPingOut: 3,
    });
  } catch (e) {
    throw new AoError('AO_CONFIG_INVALID', `cannot connect to NATS at ${o.url}: ${(e as Error).message}`, { field: 'NATS_URL', cause: e });
  }
  const jsm = await jetstreamManager(nc);
  const P = o.prefix.toUpperCase();
  const notFound = (e: unknown) => /not found/i.test((e as Error).message ?? '');
  const ensure = async (cfg: Parameters<JetStreamManager['streams']['add']>[0]) => {
    try {
      await jsm.streams.info(cfg.name!);
    } catch (e) {
      if (!notFound(e)) throw e;
      await jsm.streams.add(cfg);
    }
  };
  await ensure({
    name: `${P}_EVENTS`,
    subjects: [`${o.prefix}.ev.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: nanos(3_600_000),
    duplicate_window: nanos(120_000),
  });
  await ensure({
    name: `${P}_WORK`,
    subjects: [`${o.prefix}.work.>`],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    duplicate_window: nanos(120_000),
  });
  await ensure({
    name: `${P}_DLQ`,
    subjects: [`${o.prefix}.dlq.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: nanos(7 * 24 * 3_600_000),
  });
  for (const q of ['runs', 'tasks']) {
    const durable = `${o.prefix}-${q}`;
    try {
      await jsm.consumers.info(`${P}_WORK`, durable);
    } catch (e) {
      if (!notFound(e)) throw e;
      await jsm.consumers.add(`${P}_WORK`, {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        filter_subject: `${o.prefix}.work.${q}`,
        ack_wait: nanos(o.ackWaitMs),
        max_deliver: o.maxDeliver + 1,
        max_ack_pending: 10_000,
      });
    }
  }
  const kv = await new Kvm(nc).create(`${o.prefix}_nodes`, { ttl: o.nodeTtlMs, history: 1 });
  return { nc, jsm, kv, o };
}
