import { parseEnvelope } from '../../envelope/mod.js';
import type { Envelope } from '../../envelope/mod.js';
import { log } from '../../log/mod.js';
import { isRunSignal } from '../port.js';
import type { Bus, EnvelopeHandler, RunSignal, Subscription } from '../port.js';

interface Sub {
  runId: string;
  handler: EnvelopeHandler;
  queue: Envelope[];
  draining: boolean;
  active: boolean;
}

/**
 * The embedded bus: envelopes are validated like on the wire, then handed to each subscriber
 * through its own queue, so a slow handler delays only itself and order per subscriber holds.
 */
export class InProcessBus implements Bus {
  readonly kind = 'in-process';
  private readonly subs = new Set<Sub>();
  private closed = false;
  private readonly onError: (err: unknown, env: Envelope) => void;

  constructor(opts: { onError?: (err: unknown, env: Envelope) => void } = {}) {
    this.onError = opts.onError ?? ((err, env) => log.error(`handler failed for ${env.type} ${env.id}`, { component: 'bus', runId: env.runId, err }));
  }

  async publish(raw: Envelope): Promise<void> {
    if (this.closed) throw new Error('bus is closed');
    // Same boundary as a real transport: a structurally invalid envelope never reaches an actor.
    this.deliver(parseEnvelope(raw));
  }

  /** A commit's envelopes: the journal validated them before it stored them, so they are not parsed again. */
  async publishCommit(envs: readonly Envelope[]): Promise<void> {
    if (this.closed) throw new Error('bus is closed');
    for (const env of envs) this.deliver(env);
  }

  private deliver(env: Envelope): void {
    for (const s of this.subs) {
      if (s.active && (s.runId === '*' || s.runId === env.runId)) {
        s.queue.push(env);
        if (!s.draining) void this.drain(s);
      }
    }
  }

  subscribe(runId: string, handler: EnvelopeHandler): Subscription {
    const sub: Sub = { runId, handler, queue: [], draining: false, active: true };
    this.subs.add(sub);
    return {
      unsubscribe: () => {
        sub.active = false;
        sub.queue.length = 0;
        this.subs.delete(sub);
      },
    };
  }

  /** Run-level envelopes of every run, as signals (the same deliveries as `subscribe('*')`, filtered). */
  watchRuns(handler: (s: RunSignal) => void): Subscription {
    return this.subscribe('*', (e) => {
      if (isRunSignal(e.type)) handler({ runId: e.runId, type: e.type, seq: e.seq });
    });
  }

  private async drain(s: Sub): Promise<void> {
    s.draining = true;
    // Deliver on a later tick: publish never runs a handler inside the publisher's call stack.
    await Promise.resolve();
    while (s.active && s.queue.length) {
      const env = s.queue.shift()!;
      try {
        await s.handler(env);
      } catch (err) {
        this.onError(err, env);
      }
    }
    s.draining = false;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const s of this.subs) s.active = false;
    this.subs.clear();
  }
}
