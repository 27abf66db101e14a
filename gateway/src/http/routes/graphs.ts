import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Engine } from '@ao/actors';
import { body } from '../errors.js';
import { ErrorView, GraphDetailView, graphDetail, GraphNameParams, GraphView, graphView } from '../views.js';

export const graphsRoutes =
  (engine: Engine): FastifyPluginAsyncZod =>
  async (app) => {
    app.get('/graphs', { schema: { response: { 200: z.object({ graphs: z.array(GraphView) }) } } }, async () => ({
      graphs: engine.graphs.list().map(graphView),
    }));

    // One graph, with the JSON Schema of its input (null: it takes any input): enough to build a form.
    app.get('/graphs/:name', { schema: { params: GraphNameParams, response: { 200: GraphDetailView, 404: ErrorView } } }, async (req, reply) => {
      const g = engine.graphs.get(req.params.name);
      if (!g) return reply.status(404).send(body('AO_GRAPH_NOT_FOUND', `no graph named "${req.params.name}"`, 'name'));
      return graphDetail(g);
    });
  };
