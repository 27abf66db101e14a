import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AoError } from '@ao/graphs';
import type { Engine } from '@ao/actors';
import type { StreamHub } from '../../stream/hub.js';
import { ownRun } from '../auth/mod.js';
import type { StreamSlots } from '../auth/mod.js';
import { body } from '../errors.js';
import { RunIdParams } from '../views.js';

export const StreamQuery = z.strictObject({
  /** Send the envelopes after this seq (0: the whole log). */
  after: z.coerce.number().int().min(0).max(2_147_483_647).default(0),
});

const upgradeRequired = (path: string) => body('AO_UPGRADE_REQUIRED', `${path} is a WebSocket: connect with an Upgrade: websocket request`);

/**
 * The live streams (WebSocket): `GET /runs/:id/stream?after=seq` and `GET /stream`. Everything
 * about the request is checked before the upgrade, so a bad one is an ordinary HTTP error with a
 * code; a plain GET (no upgrade) is `426 AO_UPGRADE_REQUIRED`. The frames are in `stream/frames.ts`.
 */
export const streamRoutes =
  (engine: Engine, hub: StreamHub, slots: StreamSlots): FastifyPluginAsyncZod =>
  async (app) => {
    const resolved = new WeakMap<FastifyRequest, string>();
    /** An upgrade takes one of its tenant's stream slots (429 AO_TOO_MANY_STREAMS when none is left) until its socket closes. */
    const takeSlot = (req: FastifyRequest) => {
      if (String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return;
      const release = slots.acquire(req.principal.tenant);
      req.raw.socket.once('close', release);
    };
    app.route({
      method: 'GET',
      url: '/runs/:id/stream',
      schema: { params: RunIdParams, querystring: StreamQuery },
      preHandler: async (req) => {
        // Another tenant's run is a 404, as if it did not exist.
        const run = await ownRun(engine, req, req.params.id);
        resolved.set(req, run.id);
        if (req.query.after > run.lastSeq) {
          throw new AoError('AO_STREAM_CURSOR_AHEAD', `after=${req.query.after} is past the run's last seq (${run.lastSeq})`, { field: 'query.after' });
        }
        takeSlot(req);
      },
      handler: async (_req, reply) => reply.status(426).header('upgrade', 'websocket').send(upgradeRequired('/runs/:id/stream')),
      // The run's full id: the path may name it by a prefix.
      wsHandler: (socket, req) => hub.serveRun(socket, resolved.get(req) ?? req.params.id, req.query.after),
    });

    app.route({
      method: 'GET',
      url: '/stream',
      schema: { querystring: z.strictObject({}) },
      preHandler: async (req) => takeSlot(req),
      handler: async (_req, reply) => reply.status(426).header('upgrade', 'websocket').send(upgradeRequired('/stream')),
      // Only the caller's tenant's runs.
      wsHandler: (socket, req) => hub.feed.add(socket, req.principal.tenant),
    });
  };
