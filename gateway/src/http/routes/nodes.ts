import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Engine } from '@ao/actors';
import { NodeInfoSchema } from '@ao/runtime';

/** A node of `GET /nodes`: its membership entry, as the bus carries it. */
export const NodeView = NodeInfoSchema;

/** GET /nodes: the cluster's runtime nodes and their liveness (NATS KV membership), or this node alone. */
export const nodesRoutes =
  (engine: Engine): FastifyPluginAsyncZod =>
  async (app) => {
    app.get('/nodes', { schema: { response: { 200: z.object({ nodes: z.array(NodeView) }) } } }, async () => ({ nodes: await engine.nodes() }));
  };
