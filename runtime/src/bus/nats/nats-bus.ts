import { randomUUID } from 'node:crypto';
import { headers } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/transport-node';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import type { JetStreamManager } from '@nats-io/jetstream';
import { envelopeJson, parseEnvelope } from '../../envelope/mod.js';
import type { Envelope } from '../../envelope/mod.js';
import { isRunSignal } from '../port.js';
import type { Bus, EnvelopeHandler, Membership, Rpc, RunSignal, Subscription, WorkQueue } from '../port.js';
import { NatsLink } from './link.js';
import { NatsMembership } from './membership.js';
import { NatsRpc } from './rpc.js';
import { setUpNats } from './setup.js';
import type { NatsSetup } from './setup.js';
import { NatsWorkQueue } from './work-queue.js';
import { COMMIT_MESSAGE_BYTES, dec, enc, joinParts, logger, PART_BYTES, PART_HEADER, RunSignalSchema } from './wire.js';
import type { NatsBusOptions } from './wire.js';

// The bus's parts, one file each: wire.ts (schemas, the part format), setup.ts (streams, consumers,
// bucket), link.ts (the connection, retries, consumer loops), work-queue.ts, rpc.ts, membership.ts.
export { COMMIT_MESSAGE_BYTES, PART_BYTES } from './wire.js';
export type { NatsBusOptions } from './wire.js';

/**
 * The bus over NATS JetStream. A run's envelopes are published on `<p>.ev.<runId>` in the
 * `<P>_EVENTS` stream with their envelope id as the message id, so JetStream drops duplicates (a
 * re-publication after a crash); a run's subscriber reads them through an ordered consumer, which
 * survives reconnects without a gap. Work items (run starts, node tasks) go on the `<P>_WORK`
 * work-queue stream (`NatsWorkQueue`); node membership lives in the `<P>_nodes` KV bucket
 * (`NatsMembership`); requests and replies go over core NATS (`NatsRpc`).
 *
 * Pulls expire after 5 s and the server heartbeats every second, so a consumer notices a NATS
 * restart within seconds and resumes where it stopped; publishes retry until NATS is back.
 *
 * Postgres stays the durability point: JetStream carries, it does not store the truth.
 */
export class NatsBus implements Bus {
  readonly kind = 'nats';
  /** Whether the connection is up (false from a disconnect until the reconnect). */
  private up = true;
  /** Told when the connection is back after a disconnect: run signals sent meanwhile were lost (see `watchRuns`). */
  private readonly gapListeners = new Set<() => void>();
  private readonly link: NatsLink;
  private readonly work: NatsWorkQueue;
  readonly queue: WorkQueue;
  readonly membership: Membership;
  readonly rpc: Rpc;
  private readonly nc: NatsConnection;
  private readonly jsm: JetStreamManager;

  private constructor({ nc, jsm, kv, o }: NatsSetup) {
    this.nc = nc;
    this.jsm = jsm;
    this.link = new NatsLink(nc, jetstream(nc), o);
    this.queue = this.work = new NatsWorkQueue(this.link);
    this.rpc = new NatsRpc(this.link);
    this.membership = new NatsMembership(kv);
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
    return new NatsBus(await setUpNats(opts));
  }

  private get o() {
    return this.link.o;
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
      await this.link.retrying(
        what,
        () => true,
        () => this.link.js.publish(subject, data, { msgID, timeout: 5_000 }),
      );
      return;
    }
    const n = Math.ceil(data.length / PART_BYTES);
    for (let i = 1; i <= n; i++) {
      const h = headers();
      h.set(PART_HEADER, `${i}/${n}`);
      const part = data.subarray((i - 1) * PART_BYTES, i * PART_BYTES);
      await this.link.retrying(
        `${what}, part ${i} of ${n}`,
        () => true,
        () => this.link.js.publish(subject, part, { msgID: `${msgID}/part/${i}/${n}`, headers: h, timeout: 5_000 }),
      );
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
    return this.link.pump(
      `subscribe to ${filter}`,
      async () => {
        const consumer = await this.link.js.consumers.get(`${this.o.prefix.toUpperCase()}_EVENTS`, {
          filter_subjects: filter,
          deliver_policy: DeliverPolicy.New,
        });
        return consumer.consume({ max_messages: 512, expires: 5_000, idle_heartbeat: 1_000 });
      },
      async (msg) => {
        const bytes = joinParts(parts, msg);
        if (!bytes) return;
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

  /** Dead-lettered items of a queue (for operators and tests). */
  deadLetters(queue: 'runs' | 'tasks'): Promise<unknown[]> {
    return this.work.deadLetters(queue);
  }

  async close(): Promise<void> {
    if (this.link.closed) return;
    this.link.closed = true;
    for (const m of this.link.subs) await m.close().catch(() => undefined);
    this.link.subs.clear();
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
    return this.up && !this.link.closed && !this.nc.isClosed();
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
