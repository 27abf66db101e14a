import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { AoError } from '@ao/graphs';
import type { Engine } from '@ao/actors';
import { DiffParams, ReplayBody, RunDiffView, RunIdParams, RunView, runView } from '../views.js';

const RUN_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/** Replay, fork and compare runs. */
export const replayRoutes =
  (engine: Engine): FastifyPluginAsyncZod =>
  async (app) => {
    const check = (id: string, field: string) => {
      if (!RUN_ID.test(id)) throw new AoError('AO_RUN_NOT_FOUND', `no run ${JSON.stringify(id)}`, { field });
      return id;
    };

    /**
     * Start a replay (or, with `overrides`, a fork) of a run from checkpoint `fromStep`: a new run,
     * linked to the original (`replay.of`), restored as the run was at that step.
     */
    app.post('/runs/:id/replay', { schema: { params: RunIdParams, body: ReplayBody, response: { 202: RunView } } }, async (req, reply) => {
      const run = await engine.replay(check(req.params.id, 'id'), req.body);
      return reply.status(202).send(runView(run));
    });

    app.get('/runs/:a/diff/:b', { schema: { params: DiffParams, response: { 200: RunDiffView } } }, async (req) => {
      return engine.diff(check(req.params.a, 'a'), check(req.params.b, 'b'));
    });
  };
