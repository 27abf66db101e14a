import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AoError } from '@ao/graphs';
import type { Engine } from '@ao/actors';
import {
  CheckpointParams,
  CheckpointSummaryView,
  CheckpointView,
  EventsPage,
  ListEventsQuery,
  ListRunsQuery,
  RunIdParams,
  RunSummary,
  RunView,
  runSummary,
  runView,
  StartRunBody,
  UsageView,
} from '../views.js';

const Accepted = z.object({ id: z.string(), status: z.string() });
const RUN_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

export const runsRoutes =
  (engine: Engine): FastifyPluginAsyncZod =>
  async (app) => {
    /** The run, or AO_RUN_NOT_FOUND (also for an id no run could have, e.g. with a NUL in it). */
    const findRun = async (id: string) => {
      const run = RUN_ID.test(id) ? await engine.getRun(id) : undefined;
      if (!run) throw new AoError('AO_RUN_NOT_FOUND', `no run ${JSON.stringify(id)}`, { field: 'id' });
      return run;
    };
    app.post('/runs', { schema: { body: StartRunBody, response: { 202: Accepted } } }, async (req, reply) => {
      const run = await engine.startRun(req.body);
      return reply.status(202).send({ id: run.id, status: run.status });
    });

    app.get('/runs', { schema: { querystring: ListRunsQuery, response: { 200: z.object({ runs: z.array(RunSummary), next: z.string().nullable() }) } } }, async (req) => {
      const page = await engine.listRuns(req.query);
      return { runs: page.runs.map(runSummary), next: page.next };
    });

    app.get('/runs/:id', { schema: { params: RunIdParams, response: { 200: RunView } } }, async (req) => {
      const run = await findRun(req.params.id);
      const u = await engine.usage(run.id);
      return { ...runView(run), budgetUsage: u ? { limits: u.limits, used: u.used, reserved: u.reserved } : null };
    });

    app.get('/runs/:id/usage', { schema: { params: RunIdParams, response: { 200: UsageView } } }, async (req) => {
      const run = await findRun(req.params.id);
      return (await engine.usage(run.id))!;
    });

    app.post('/runs/:id/cancel', { schema: { params: RunIdParams, response: { 202: Accepted } } }, async (req, reply) => {
      const run = await engine.cancel((await findRun(req.params.id)).id);
      return reply.status(202).send({ id: run.id, status: run.status });
    });

    app.get('/runs/:id/checkpoints', { schema: { params: RunIdParams, response: { 200: z.object({ checkpoints: z.array(CheckpointSummaryView) }) } } }, async (req) => {
      const run = await findRun(req.params.id);
      return { checkpoints: await engine.store.listCheckpoints(run.id) };
    });

    app.get('/runs/:id/checkpoints/:step', { schema: { params: CheckpointParams, response: { 200: CheckpointView } } }, async (req) => {
      const run = await findRun(req.params.id);
      const cp = await engine.store.getCheckpoint(run.id, req.params.step);
      if (!cp) throw new AoError('AO_CHECKPOINT_NOT_FOUND', `run ${run.id} has no checkpoint ${req.params.step}`, { field: 'step' });
      return cp;
    });

    app.get('/runs/:id/events', { schema: { params: RunIdParams, querystring: ListEventsQuery, response: { 200: EventsPage } } }, async (req) => {
      const run = await findRun(req.params.id);
      const events = await engine.listEvents(run.id, { after: req.query.after, limit: req.query.limit });
      // A full page may have more behind it; a short one is the end of the log for now.
      const next = events.length === req.query.limit ? events[events.length - 1]!.seq : null;
      return { events, next };
    });
  };
