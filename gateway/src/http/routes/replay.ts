import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Engine } from '@ao/actors';
import { ownRun } from '../auth/mod.js';
import { DiffParams, ReplayBody, RunDiffView, RunIdParams, RunView, runView } from '../views.js';
import { refuseWhileDraining } from './runs.js';
import type { Admission } from './runs.js';

/** Replay, fork and compare runs: only the caller's tenant's runs; a replay belongs to the tenant of its original. */
export const replayRoutes =
  (engine: Engine, admission: Admission): FastifyPluginAsyncZod =>
  async (app) => {
    /**
     * Start a replay (or, with `overrides`, a fork) of a run from checkpoint `fromStep`: a new run,
     * linked to the original (`replay.of`), restored as the run was at that step.
     */
    app.post('/runs/:id/replay', { schema: { params: RunIdParams, body: ReplayBody, response: { 202: RunView } } }, async (req, reply) => {
      const original = await ownRun(engine, req, req.params.id);
      refuseWhileDraining(admission);
      const run = await admission.cap.admit(original.tenant, () => engine.replay(original.id, req.body));
      return reply.status(202).send(runView(run));
    });

    app.get('/runs/:a/diff/:b', { schema: { params: DiffParams, response: { 200: RunDiffView } } }, async (req) => {
      const [a, b] = await Promise.all([ownRun(engine, req, req.params.a, 'a'), ownRun(engine, req, req.params.b, 'b')]);
      return engine.diff(a.id, b.id);
    });
  };
