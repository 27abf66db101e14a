import { randomUUID } from 'node:crypto';
import { connect, headers, NoRespondersError, RequestError } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import type { ConsumerMessages, JetStreamClient, JetStreamManager, JsMsg } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { KV } from '@nats-io/kv';
import { z } from 'zod';
import { AoError, ERROR_CODES } from '@ao/graphs';
import type { ErrorCode } from '@ao/graphs';
import { envelopeJson, parseEnvelope } from '../../envelope/mod.js';
import type { Envelope } from '../../envelope/mod.js';
import { log } from '../../log/mod.js';
import { isoNow } from '../../clock/mod.js';
import { isRunSignal } from '../port.js';
import type { Bus, EnvelopeHandler, Membership, NodeInfo, Rpc, RunSignal, Subscription, WorkHandler, WorkQueue } from '../port.js';

const logger = log.child({ component: 'bus nats' });

const nanos = (ms: number) => ms * 1_000_000;
const NodeInfoSchema = z.object({
  id: z.string(),
  host: z.string().optional(),
  pid: z.number().int().optional(),
  started: z.string(),
  runsHosted: z.number().int(),
  activeRuns: z.number().int(),
  tasksDone: z.number().int(),
  activeTasks: z.number().int().optional(),
  runs: z.array(z.string()).optional(),
  load: z.object({ cpu: z.number(), eventLoopDelayMs: z.number(), rssBytes: z.number() }).optional(),
  lastHeartbeat: z.string(),
});
const RunSignalSchema = z.object({ runId: z.string().min(1), type: z.string().min(1), seq: z.number().int().positive() });
/** A reply on the wire: the handler's value, or its error (code and message). */
const ReplySchema = z.union([z.object({ ok: z.unknown() }), z.object({ error: z.object({ code: z.string(), message: z.string() }) })]);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const enc = new TextEncoder();
const dec = new TextDecoder();

export interface NatsBusOptions {
  url: string;
  /** Prefix of every stream, subject, consumer and bucket (AO_NATS_PREFIX; tests use unique ones). */
  prefix: string;
  /** A name for the connection (shown by the server). */
  name?: string;
  /** Deliveries of a work item before it is parked on the dead-letter subject. */
  maxDeliver?: number;
  /** How long a pulled work item may go unacknowledged before it is redelivered (a node died). */
  ackWaitMs?: number;
  /** How long a node's membership entry lives without a heartbeat. */
  nodeTtlMs?: number;
}

/** A commit's envelopes travel as one message up to this size (well under NATS's default 1 MiB payload limit). */
export const COMMIT_MESSAGE_BYTES = 256 * 1024;
/**
 * An envelope larger than that (a long conversation's request, a large tool result) travels in
 * parts of this size, each a message with an `Ao-Part: i/n` header, put together by the
 * receiver: NATS refuses a message past its max payload (1 MiB by default), and retrying one
 * would hold back every later envelope of the run.
 */
export const PART_BYTES = 256 * 1024;
const PART_HEADER = 'Ao-Part';

/**
 * The bus over NATS JetStream. A run's envelopes are published on `<p>.ev.<runId>` in the
 * `<P>_EVENTS` stream with their envelope id as the message id, so JetStream drops duplicates (a
 * re-publication after a crash); a run's subscriber reads them through an ordered consumer, which
 * survives reconnects without a gap. Work items (run starts) go on the `<P>_WORK` work-queue
 * stream and are pulled by every node through one durable consumer per queue, acknowledged
 * explicitly; a failing item is redelivered with backoff, then parked on `<p>.dlq.<queue>` in the
 * `<P>_DLQ` stream, where an operator can see it. Node membership lives in the `<P>_nodes` KV
 * bucket, each entry expiring without heartbeats.
 *
 * Pulls expire after 5 s and the server heartbeats every second, so a consumer notices a NATS
 * restart within seconds and resumes where it stopped; publishes retry until NATS is back.
 *
 * Postgres stays the durability point: JetStream carries, it does not store the truth.
 */
export class NatsBus implements Bus {
  readonly kind = 'nats';
  private closed = false;
  /** Whether the connection is up (false from a disconnect until the reconnect). */
  private up = true;
  private readonly subs = new Set<ConsumerMessages>();
  /** Told when the connection is back after a disconnect: run signals sent meanwhile were lost (see `watchRuns`). */
  private readonly gapListeners = new Set<() => void>();
  readonly queue: WorkQueue;
  readonly membership: Membership;
  readonly rpc: Rpc;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly js: JetStreamClient,
    private readonly jsm: JetStreamManager,
    private readonly kv: KV,
    private readonly o: Required<Omit<NatsBusOptions, 'name'>>,
  ) {
    this.queue = {
      enqueue: (q, id, payload) => this.enqueue(q, id, payload),
      consume: (q, h, c) => ((c?.concurrency ?? 1) > 1 ? this.pull(q, h, c!.concurrency!) : this.consume(q, h)),
    };
    this.rpc = { serve: (n, h) => this.serve(n, h), call: (n, p, t) => this.call(n, p, t) };
    this.membership = { beat: (info) => this.beat(info), list: () => this.listNodes(), leave: (id) => this.leave(id) };
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') this.up = false;
        else if (s.type === 'reconnect') {
          this.up = true;
          for (const l of this.gapListeners) l();
        }
      }
    })().catch(() => undefined);
  }

  /** Connect and create the streams, the consumers and the bucket if missing. */
  static async connect(opts: NatsBusOptions): Promise<NatsBus> {
    const o = { maxDeliver: 5, ackWaitMs: 30_000, nodeTtlMs: 10_000, ...opts };
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(o.prefix)) throw new AoError('AO_CONFIG_INVALID', `AO_NATS_PREFIX must be 1-32 letters, digits, _ or -, got ${JSON.stringify(o.prefix)}`, { field: 'AO_NATS_PREFIX' });
    let nc: NatsConnection;
    try {
      nc = await connect({ servers: o.url, name: o.name ?? 'agent-orchestrator', reconnect: true, maxReconnectAttempts: -1, reconnectTimeWait: 250, timeout: 5_000,
        // A silent partition is noticed in about 15 s (the default pings every 2 minutes): the
        // engine then stops renewing its leases, and other nodes take its runs over.
        pingInterval: 5_000, maxPingOut: 3 });
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
    await ensure({ name: `${P}_EVENTS`, subjects: [`${o.prefix}.ev.>`], retention: RetentionPolicy.Limits, storage: StorageType.File, max_age: nanos(3_600_000), duplicate_window: nanos(120_000) });
    await ensure({ name: `${P}_WORK`, subjects: [`${o.prefix}.work.>`], retention: RetentionPolicy.Workqueue, storage: StorageType.File, duplicate_window: nanos(120_000) });
    await ensure({ name: `${P}_DLQ`, subjects: [`${o.prefix}.dlq.>`], retention: RetentionPolicy.Limits, storage: StorageType.File, max_age: nanos(7 * 24 * 3_600_000) });
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
    return new NatsBus(nc, jetstream(nc), jsm, kv, o);
  }

  /**
   * Try `f` with exponential backoff (up to 2 s) until it succeeds (NATS may be restarting); gives
   * up (undefined) when the bus closes or `go()` turns false, and throws after `maxAttempts`.
   */
  private async retrying<T>(what: string, go: () => boolean, f: () => Promise<T>, maxAttempts = Infinity): Promise<T | undefined> {
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

  private subject(runId: string): string {
    return `${this.o.prefix}.ev.${runId.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  }

  /**
   * Publish, retrying while NATS is unreachable (a restart pauses the run, it does not lose the
   * message: the journal has committed it, and JetStream drops the copy if an earlier try landed).
   */
  async publish(raw: Envelope, o: { again?: boolean } = {}): Promise<void> {
    const env = parseEnvelope(raw); // what goes on the wire is a valid envelope, or nothing
    const data = enc.encode(JSON.stringify(env));
    // A re-delivery after a recovery must not be dropped as a duplicate of the first publication
    // (its retries still are); receivers recognise the envelope by its id.
    const msgID = o.again ? `${env.id}/again/${randomUUID()}` : env.id;
    this.signal([env]);
    await this.send(this.subject(env.runId), data, msgID, `publish ${env.type} (${env.id})`);
  }

  /** One message, or its parts in order when it is past `PART_BYTES` (see there). */
  private async send(subject: string, data: Uint8Array, msgID: string, what: string): Promise<void> {
    if (data.length <= COMMIT_MESSAGE_BYTES) {
      await this.retrying(what, () => true, () => this.js.publish(subject, data, { msgID, timeout: 5_000 }));
      return;
    }
    const n = Math.ceil(data.length / PART_BYTES);
    for (let i = 1; i <= n; i++) {
      const h = headers();
      h.set(PART_HEADER, `${i}/${n}`);
      const part = data.subarray((i - 1) * PART_BYTES, i * PART_BYTES);
      await this.retrying(`${what}, part ${i} of ${n}`, () => true, () => this.js.publish(subject, part, { msgID: `${msgID}/part/${i}/${n}`, headers: h, timeout: 5_000 }));
    }
  }

  /**
   * One JetStream message per commit (split past `COMMIT_MESSAGE_BYTES`): a JSON array of its
   * envelopes, deduplicated by its first and last ids. Receivers unpack it (and still take the
   * single envelopes `publish` sends).
   */
  async publishCommit(envs: readonly Envelope[], o: { again?: boolean } = {}): Promise<void> {
    this.signal(envs);
    // A re-delivery is not dropped as a duplicate of the first publication (see `publish`).
    const again = o.again ? `/again/${randomUUID()}` : '';
    let batch: string[] = [];
    let first: Envelope | undefined;
    let last: Envelope | undefined;
    let bytes = 0;
    const send = async (): Promise<void> => {
      if (!batch.length) return;
      const data = enc.encode(`[${batch.join(',')}]`);
      const msgID = `${first!.id}..${last!.id}${again}`;
      const what = `publish ${batch.length} envelope(s) of run ${first!.runId} (${msgID})`;
      const runId = first!.runId;
      batch = [];
      bytes = 0;
      first = undefined;
      await this.send(this.subject(runId), data, msgID, what);
    };
    for (const env of envs) {
      // The journal validated these and serialised their payloads once already.
      const json = envelopeJson(env);
      if (batch.length && (bytes + json.length > COMMIT_MESSAGE_BYTES || env.runId !== first!.runId)) await send();
      batch.push(json);
      bytes += json.length;
      first ??= env;
      last = env;
    }
    await send();
  }

  /**
   * Push the run-level envelopes among `envs` as signals on `<p>.st.<runId>` over core NATS: no
   * stream, no consumer, a few dozen bytes each, sent before the JetStream copy since the commit
   * they report is done. At most once (a message sent while disconnected is lost): watchers re-read.
   */
  private signal(envs: readonly Envelope[]): void {
    for (const e of envs) {
      if (!isRunSignal(e.type)) continue;
      try {
        this.nc.publish(this.signalSubject(e.runId), enc.encode(JSON.stringify({ runId: e.runId, type: e.type, seq: e.seq } satisfies RunSignal)));
      } catch {
        // Closed or disconnected: the watchers' re-reads cover it.
      }
    }
  }

  private signalSubject(runId: string): string {
    return `${this.o.prefix}.st.${runId.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  }

  /**
   * Every run's signals (see `signal`): one core NATS subscription, kept across reconnects by the
   * client. `onGap` is called at each reconnect (the client has subscribed again by then): what
   * was sent while the connection was down never came.
   */
  watchRuns(handler: (s: RunSignal) => void, o: { onGap?: () => void } = {}): Subscription {
    const onGap = o.onGap;
    if (onGap) this.gapListeners.add(onGap);
    const sub = this.nc.subscribe(`${this.o.prefix}.st.>`, {
      callback: (err, msg) => {
        if (err) return;
        let s: RunSignal;
        try {
          s = RunSignalSchema.parse(JSON.parse(dec.decode(msg.data)));
        } catch (e) {
          logger.error(`dropped an invalid run signal on ${msg.subject}: ${(e as Error).message}`);
          return;
        }
        try {
          handler(s);
        } catch (e) {
          logger.error(`run signal handler failed for ${s.type}`, { runId: s.runId, err: e });
        }
      },
    });
    // The server has the subscription once a round trip after it has come back.
    return {
      ready: this.nc.flush().catch(() => undefined),
      unsubscribe: () => {
        if (onGap) this.gapListeners.delete(onGap);
        sub.unsubscribe();
      },
    };
  }

  /** A run's envelopes (or every run's, `'*'`) from now on, in order, through an ordered consumer. */
  subscribe(runId: string, handler: EnvelopeHandler): Subscription {
    const filter = runId === '*' ? `${this.o.prefix}.ev.>` : this.subject(runId);
    const parts = new Map<string, Uint8Array[]>();
    return this.pump(
      `subscribe to ${filter}`,
      async () => {
        const consumer = await this.js.consumers.get(`${this.o.prefix.toUpperCase()}_EVENTS`, { filter_subjects: filter, deliver_policy: DeliverPolicy.New });
        return consumer.consume({ max_messages: 512, expires: 5_000, idle_heartbeat: 1_000 });
      },
      async (msg) => {
        // A large message comes in parts, in order on its subject: kept until the last one.
        let bytes = msg.data;
        const part = msg.headers?.get(PART_HEADER);
        if (part) {
          const [i, n] = part.split('/').map(Number);
          // Parts of one message share its id (before `/part/`): another publisher's messages may come between them.
          const key = `${msg.subject} ${(msg.headers?.get('Nats-Msg-Id') ?? '').replace(/\/part\/\d+\/\d+$/, '')}`;
          const got = i === 1 ? [] : parts.get(key);
          if (!got || got.length !== i! - 1) {
            parts.delete(key); // a part missing (e.g. subscribed mid-message): that message is lost to this subscriber
            logger.error(`dropped part ${part} of a message on ${msg.subject}: its earlier parts were not received`);
            return;
          }
          got.push(msg.data);
          if (i! < n!) {
            parts.set(key, got);
            return;
          }
          parts.delete(key);
          bytes = Buffer.concat(got);
        }
        // Envelopes from another process: validated here, where they enter (one, or a commit's array).
        let data: unknown;
        try {
          data = JSON.parse(dec.decode(bytes));
        } catch (e) {
          logger.error(`dropped a message that is not JSON on ${msg.subject}: ${(e as Error).message}`);
          return;
        }
        for (const raw of Array.isArray(data) ? data : [data]) {
          let env: Envelope;
          try {
            env = parseEnvelope(raw);
          } catch (e) {
            logger.error(`dropped an invalid envelope on ${msg.subject}: ${(e as Error).message}`);
            continue;
          }
          try {
            await handler(env);
          } catch (e) {
            logger.error(`handler of ${env.type} (${env.id}) failed`, { runId: env.runId, err: e });
          }
        }
      },
    );
  }

  /**
   * Open a consumer (retrying while NATS is away) and feed its messages to `onMessage`, one at a
   * time; if the consumer fails or ends while still wanted, open it again. `ready` resolves once
   * the first one is open.
   */
  private pump(what: string, open: () => Promise<ConsumerMessages>, onMessage: (msg: JsMsg) => Promise<void>): Subscription {
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

  private async enqueue(queue: 'runs' | 'tasks', id: string, payload: unknown): Promise<void> {
    const data = enc.encode(JSON.stringify(payload));
    // Bounded (about a minute): the caller is a request waiting for its answer.
    const done = await this.retrying(`enqueue ${queue} item ${id}`, () => true, () => this.js.publish(`${this.o.prefix}.work.${queue}`, data, { msgID: `${queue}:${id}`, timeout: 5_000 }), 40);
    if (!done) throw new AoError('AO_INTERNAL', `could not enqueue ${queue} item ${id}: the bus is closed`);
  }

  /**
   * Pull a queue's items and hand each to `handler`: acknowledged when it resolves, redelivered
   * with backoff when it throws, parked on the dead-letter subject after `maxDeliver` tries.
   */
  private consume(queue: 'runs' | 'tasks', handler: WorkHandler): Subscription {
    return this.pump(
      `consume ${queue}`,
      async () => {
        const consumer = await this.js.consumers.get(`${this.o.prefix.toUpperCase()}_WORK`, `${this.o.prefix}-${queue}`);
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
    let stopped = false;
    let active = 0;
    let freed: (() => void) | undefined;
    let batch: ConsumerMessages | undefined;
    let opened!: () => void;
    const ready = new Promise<void>((r) => (opened = r));
    const what = `consume ${queue}`;
    void (async () => {
      let consumer: Awaited<ReturnType<JetStreamClient['consumers']['get']>> | undefined;
      while (!stopped && !this.closed) {
        consumer ??= await this.retrying(what, () => !stopped, () => this.js.consumers.get(`${this.o.prefix.toUpperCase()}_WORK`, `${this.o.prefix}-${queue}`));
        if (!consumer) break;
        opened();
        while (active >= concurrency && !stopped) await new Promise<void>((r) => (freed = r));
        if (stopped || this.closed) break;
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
          if (stopped || this.closed) break;
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
      const keepAlive = setInterval(() => msg.working(), Math.max(1_000, this.o.ackWaitMs / 3));
      try {
        await handler(payload, { deliveries: tries });
      } finally {
        clearInterval(keepAlive);
      }
      msg.ack();
    } catch (e) {
      if (tries < this.o.maxDeliver) return void msg.nak(Math.min(30_000, 200 * 2 ** (tries - 1)));
      // Parked where an operator can see it (`<P>_DLQ`), then removed from the work queue; if
      // even that fails, it stays in the queue and comes back.
      const dead = { queue, payload: payload ?? dec.decode(msg.data), error: (e as Error).message, deliveries: tries, at: isoNow() };
      try {
        await this.js.publish(`${this.o.prefix}.dlq.${queue}`, enc.encode(JSON.stringify(dead)), { timeout: 5_000 });
      } catch (dlq) {
        logger.error(`could not park a ${queue} item (${(dlq as Error).message}); it will be redelivered`);
        return void msg.nak(30_000);
      }
      logger.error(`${queue} item parked on ${this.o.prefix}.dlq.${queue} after ${tries} deliveries: ${(e as Error).message}`);
      msg.ack();
    }
  }

  private rpcSubject(name: string): string {
    return `${this.o.prefix}.rpc.${name}`;
  }

  /** Answer requests to `name` (core NATS: no stream holds them; the caller retries). */
  private serve(name: string, handler: (payload: unknown) => Promise<unknown>): Subscription {
    const sub = this.nc.subscribe(this.rpcSubject(name), {
      callback: (err, msg) => {
        if (err) return;
        void (async () => {
          let reply: unknown;
          try {
            reply = { ok: (await handler(JSON.parse(dec.decode(msg.data)))) ?? null };
          } catch (e) {
            const code = e instanceof AoError ? e.code : 'AO_INTERNAL';
            reply = { error: { code, message: (e as Error).message } };
          }
          try {
            msg.respond(enc.encode(JSON.stringify(reply)));
          } catch (e) {
            logger.error(`could not answer a request on ${msg.subject}: ${(e as Error).message}`);
          }
        })();
      },
    });
    // Ready once the server has the subscription: a caller told to call it finds it.
    return { ready: this.nc.flush().catch(() => undefined), unsubscribe: () => sub.unsubscribe() };
  }

  private async call(name: string, payload: unknown, timeoutMs: number): Promise<unknown> {
    if (this.closed) throw new AoError('AO_BUS_UNAVAILABLE', 'the bus is closed');
    let data: Uint8Array;
    try {
      const m = await this.nc.request(this.rpcSubject(name), enc.encode(JSON.stringify(payload)), { timeout: timeoutMs });
      data = m.data;
    } catch (e) {
      if (e instanceof NoRespondersError || (e instanceof RequestError && e.isNoResponders())) throw new AoError('AO_BUS_NO_RESPONDER', `nobody answers ${name}`);
      throw new AoError('AO_BUS_UNAVAILABLE', `request ${name}: ${(e as Error).message}`, { cause: e });
    }
    const r = ReplySchema.safeParse(JSON.parse(dec.decode(data)));
    if (!r.success) throw new AoError('AO_ENVELOPE_INVALID', `a malformed reply to ${name}`);
    if ('error' in r.data) {
      const code = (r.data.error.code in ERROR_CODES ? r.data.error.code : 'AO_INTERNAL') as ErrorCode;
      throw new AoError(code, r.data.error.message);
    }
    return r.data.ok;
  }

  /** Dead-lettered items of a queue (for operators and tests). */
  async deadLetters(queue: 'runs' | 'tasks'): Promise<unknown[]> {
    const consumer = await this.js.consumers.get(`${this.o.prefix.toUpperCase()}_DLQ`, { filter_subjects: `${this.o.prefix}.dlq.${queue}`, deliver_policy: DeliverPolicy.All });
    const out: unknown[] = [];
    const batch = await consumer.fetch({ max_messages: 1000, expires: 1_000 });
    for await (const m of batch) {
      out.push(JSON.parse(dec.decode(m.data)));
      if (m.info.pending === 0) break;
    }
    return out;
  }

  private async beat(info: NodeInfo): Promise<void> {
    await this.kv.put(info.id.replace(/[^A-Za-z0-9_=.-]/g, '_'), JSON.stringify(info));
  }

  private async leave(id: string): Promise<void> {
    await this.kv.delete(id.replace(/[^A-Za-z0-9_=.-]/g, '_')).catch(() => undefined);
  }

  private async listNodes(): Promise<NodeInfo[]> {
    const out: NodeInfo[] = [];
    // `keys()` reads the bucket through a consumer: a node that beats while it runs is delivered
    // again (its new revision), so a key can come twice. Listed once each: that was the "4th node"
    // GET /nodes showed now and then in a cluster of three.
    const keys = new Set<string>();
    for await (const key of await this.kv.keys()) keys.add(key);
    for (const key of keys) {
      const e = await this.kv.get(key);
      if (!e || e.operation !== 'PUT' || !e.length) continue;
      try {
        out.push(NodeInfoSchema.parse(JSON.parse(e.string())));
      } catch {
        logger.warn(`ignored a malformed membership entry ${key}`);
      }
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const m of this.subs) await m.close().catch(() => undefined);
    this.subs.clear();
    // With NATS away, drain() fails at once (nothing can be flushed) and leaves the connection
    // open, reconnecting for ever and holding its pending requests: close it then.
    await this.nc.drain().catch(() => this.nc.close().catch(() => undefined));
  }

  /** For tests: the connection's state. */
  get connected(): boolean {
    return !this.nc.isClosed();
  }

  /** Whether NATS answers now: false while the connection is lost (a restart, a partition once noticed) and after close. */
  get reachable(): boolean {
    return this.up && !this.closed && !this.nc.isClosed();
  }

  /** For operators: the stream names (useful in logs). */
  get streams(): string[] {
    const P = this.o.prefix.toUpperCase();
    return [`${P}_EVENTS`, `${P}_WORK`, `${P}_DLQ`];
  }

  /** The JetStream manager (tests inspect consumers). */
  get manager(): JetStreamManager {
    return this.jsm;
  }
}
