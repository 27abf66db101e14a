import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Engine } from '@ao/actors';

export const NodeView = z.object({
  id: z.string(),
  /** Where the process holding the id runs (its host name and pid). */
  host: z.string().optional(),
  pid: z.number().int().optional(),
  started: z.string(),
  /** Runs this node has hosted since it started, and hosts now. */
  runsHosted: z.number().int(),
  activeRuns: z.number().int(),
  /** Node tasks (node executions, swarm branches of any node's runs) run here to their end, and running now. */
  tasksDone: z.number().int(),
  activeTasks: z.number().int().optional(),
  /** Ids of the runs it hosts now (the first 100; `activeRuns` counts them all). */
  runs: z.array(z.string()).optional(),
  /** Since its previous heartbeat: CPU used / wall time (1 = one CPU), event-loop delay p99 (ms), resident memory. */
  load: z.object({ cpu: z.number(), eventLoopDelayMs: z.number(), rssBytes: z.number() }).optional(),
  lastHeartbeat: z.string(),
});

/** GET /nodes: the cluster's runtime nodes and their liveness (NATS KV membership), or this node alone. */
export const nodesRoutes =
  (engine: Engine): FastifyPluginAsyncZod =>
  async (app) => {
    app.get('/nodes', { schema: { response: { 200: z.object({ nodes: z.array(NodeView) }) } } }, async () => ({ nodes: await engine.nodes() }));
  };
