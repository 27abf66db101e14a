import { NoRespondersError, RequestError } from '@nats-io/transport-node';
import { AoError, ERROR_CODES } from '@ao/graphs';
import type { ErrorCode } from '@ao/graphs';
import type { Rpc, Subscription } from '../port.js';
import type { NatsLink } from './link.js';
import { dec, enc, logger, ReplySchema } from './wire.js';

/** Request and reply over core NATS on `<p>.rpc.<name>`: no stream holds them; the caller retries. */
export class NatsRpc implements Rpc {
  constructor(private readonly link: NatsLink) {}

  private subject(name: string): string {
    return `${this.link.o.prefix}.rpc.${name}`;
  }

  /** Answer requests to `name` (core NATS: no stream holds them; the caller retries). */
  serve(name: string, handler: (payload: unknown) => Promise<unknown>): Subscription {
    const nc = this.link.nc;
    const sub = nc.subscribe(this.subject(name), {
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
    return { ready: nc.flush().catch(() => undefined), unsubscribe: () => sub.unsubscribe() };
  }

  async call(name: string, payload: unknown, timeoutMs: number): Promise<unknown> {
    if (this.link.closed) throw new AoError('AO_BUS_UNAVAILABLE', 'the bus is closed');
    let data: Uint8Array;
    try {
      const m = await this.link.nc.request(this.subject(name), enc.encode(JSON.stringify(payload)), { timeout: timeoutMs });
      data = m.data;
    } catch (e) {
      if (e instanceof NoRespondersError || (e instanceof RequestError && e.isNoResponders()))
        throw new AoError('AO_BUS_NO_RESPONDER', `nobody answers ${name}`);
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
}
