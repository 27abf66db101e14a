import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AoError } from '@ao/graphs';
import type { Engine } from '@ao/actors';
import type { StreamHub } from '../../stream/hub.js';
import { body } from '../errors.js';
import { RunIdParams } from '../views.js';

const RUN_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

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
  (engine: Engine, hub: StreamHub): FastifyPluginAsyncZod =>
  async (app) => {
    app.route({
      method: 'GET',
      url: '/runs/:id/stream',
      schema: { params: RunIdParams, querystring: StreamQuery },
      preHandler: async (req) => {
        const run = RUN_ID.test(req.params.id) ? await engine.getRun(req.params.id) : undefined;
        if (!run) throw new AoError('AO_RUN_NOT_FOUND', `no run ${JSON.stringify(req.params.id)}`, { field: 'id' });
        if (req.query.after > run.lastSeq) {
          throw new AoError('AO_STREAM_CURSOR_AHEAD', `after=${req.query.after} is past the run's last seq (${run.lastSeq})`, { field: 'query.after' });
        }
      },
      handler: async (_req, reply) => reply.status(426).header('upgrade', 'websocket').send(upgradeRequired('/runs/:id/stream')),
      wsHandler: (socket, req) => hub.serveRun(socket, req.params.id, req.query.after),
    });

    app.route({
      method: 'GET',
      url: '/stream',
      schema: { querystring: z.strictObject({}) },
      handler: async (_req, reply) => reply.status(426).header('upgrade', 'websocket').send(upgradeRequired('/stream')),
      wsHandler: (socket) => hub.feed.add(socket),
    });
  };
