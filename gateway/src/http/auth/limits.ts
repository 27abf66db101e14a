import { z } from 'zod';
import { AoError } from '@ao/graphs';
import type { RunQueries } from '@ao/actors';
import type { RunStatus } from '@ao/runtime';

const count = (def: number) => z.coerce.number().int().min(0).default(def);

/**
 * The gateway's own settings, read from the environment (`gatewayEnv(process.env)`); each limit
 * 0 means no limit.
 */
export const GatewayEnvSchema = z.object({
  /** `1`/`true`: every route but /health needs a key even before any key exists. */
  AO_REQUIRE_AUTH: z
    .string()
    .optional()
    .transform((v) => v === '1' || v === 'true'),
  /** Requests per minute per API key (per client address without one). */
  AO_RATE_LIMIT: count(3000),
  /** Runs a tenant may have pending or running at once. */
  AO_MAX_ACTIVE_RUNS: count(1000),
  /** Open WebSocket streams per tenant, and in all. */
  AO_MAX_STREAMS: count(100),
  AO_MAX_STREAMS_TOTAL: count(2000),
  /** Largest request body in bytes. */
  AO_BODY_LIMIT: z.coerce
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024),
  /** SIGTERM: how long in-flight runs may go on before they are stopped at their last checkpoint. */
  AO_SHUTDOWN_GRACE_MS: count(10_000),
});
export type GatewayEnv = z.infer<typeof GatewayEnvSchema>;

export interface Limits {
  requireAuth: boolean;
  rateLimitPerMin: number;
  maxActiveRuns: number;
  maxStreams: number;
  maxStreamsTotal: number;
  bodyLimit: number;
  /** SIGTERM: how long hosted runs may go on before they are stopped at their last step. */
  shutdownGraceMs: number;
}

export function gatewayEnv(env: Record<string, string | undefined>): GatewayEnv {
  const r = GatewayEnvSchema.safeParse(env);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new AoError('AO_CONFIG_INVALID', `${String(i.path[0])}: ${i.message}`, { field: String(i.path[0]) });
  }
  return r.data;
}

export function limitsOf(e: GatewayEnv): Limits {
  return {
    requireAuth: e.AO_REQUIRE_AUTH,
    rateLimitPerMin: e.AO_RATE_LIMIT,
    maxActiveRuns: e.AO_MAX_ACTIVE_RUNS,
    maxStreams: e.AO_MAX_STREAMS,
    maxStreamsTotal: e.AO_MAX_STREAMS_TOTAL,
    bodyLimit: e.AO_BODY_LIMIT,
    shutdownGraceMs: e.AO_SHUTDOWN_GRACE_MS,
  };
}

const ACTIVE: readonly RunStatus[] = ['pending', 'running'];

/** The next turn of the event loop (after the I/O of this one: the requests read with it). */
const turn = () => new Promise<void>((r) => setImmediate(r));

/**
 * The cap on a tenant's active runs. The check counts the tenant's stored active runs plus the
 * submissions this gateway is admitting right now (counted in memory before the store is asked),
 * so concurrent submits through one gateway can never overshoot; a submit that just committed may
 * be counted twice, which refuses early, never late. Several gateways each hold this line, so the
 * cap across a cluster can be passed by at most the submissions in flight at that instant.
 */
export class ActiveRunCap {
  private readonly admitting = new Map<string, number>();
  /** Per tenant, the count of its active runs that is about to be asked for: submits arriving meanwhile share it. */
  private readonly nextCount = new Map<string, Promise<number>>();
  /** Per tenant, the count sent and not yet answered. */
  private readonly sent = new Map<string, Promise<number>>();

  constructor(
    private readonly runs: Pick<RunQueries, 'countRuns'>,
    private readonly max: number,
  ) {}

  async admit<T>(tenant: string, start: () => Promise<T>): Promise<T> {
    if (this.max <= 0) return start();
    const mine = (this.admitting.get(tenant) ?? 0) + 1;
    this.admitting.set(tenant, mine);
    try {
      const stored = await this.storedActive(tenant);
      const others = (this.admitting.get(tenant) ?? 1) - 1;
      if (stored + others >= this.max) {
        throw new AoError(
          'AO_TOO_MANY_ACTIVE_RUNS',
          `tenant ${tenant} has ${stored + others} active runs, the most it may have is ${this.max}; wait for some to finish`,
          {
            details: { limit: this.max, active: stored + others },
          },
        );
      }
      return await start();
    } finally {
      const left = (this.admitting.get(tenant) ?? 1) - 1;
      if (left > 0) this.admitting.set(tenant, left);
      else this.admitting.delete(tenant);
    }
  }

  /**
   * The tenant's stored active runs, asked for once the tenant's previous count has returned and
   * on a later turn of the event loop: the submits that arrive meanwhile share one count (a burst
   * of 1,000 submits made 1,000 count statements, each on the thread with PGlite, queued with the
   * inserts). Each sharer arrived before its count was sent, so it sees every run admitted before
   * it, as a count of its own would; later arrivals wait for the next one.
   */
  private storedActive(tenant: string): Promise<number> {
    let count = this.nextCount.get(tenant);
    if (!count) {
      const previous = this.sent.get(tenant);
      count = (previous ? previous.then(turn, turn) : turn()).then(() => {
        this.nextCount.delete(tenant);
        const sent = this.runs.countRuns(tenant, ACTIVE);
        this.sent.set(tenant, sent);
        const done = () => void (this.sent.get(tenant) === sent && this.sent.delete(tenant));
        sent.then(done, done);
        return sent;
      });
      this.nextCount.set(tenant, count);
    }
    return count;
  }
}

/** Open WebSocket streams per tenant and in all; a slot is taken before the upgrade and given back when the socket closes. */
export class StreamSlots {
  private readonly byTenant = new Map<string, number>();
  private total = 0;

  constructor(
    private readonly perTenant: number,
    private readonly all: number,
  ) {}

  get open(): number {
    return this.total;
  }

  /** Take a slot (or throw AO_TOO_MANY_STREAMS); the returned function gives it back, once. */
  acquire(tenant: string): () => void {
    const mine = this.byTenant.get(tenant) ?? 0;
    if (this.perTenant > 0 && mine >= this.perTenant) {
      throw new AoError('AO_TOO_MANY_STREAMS', `tenant ${tenant} has ${mine} open streams, the most it may have`, {
        details: { limit: this.perTenant, scope: 'tenant' },
      });
    }
    if (this.all > 0 && this.total >= this.all) {
      throw new AoError('AO_TOO_MANY_STREAMS', `the server has ${this.total} open streams, the most it serves`, {
        details: { limit: this.all, scope: 'server' },
      });
    }
    this.byTenant.set(tenant, mine + 1);
    this.total += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.total -= 1;
      const left = (this.byTenant.get(tenant) ?? 1) - 1;
      if (left > 0) this.byTenant.set(tenant, left);
      else this.byTenant.delete(tenant);
    };
  }
}
