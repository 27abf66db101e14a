import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AoError } from '@ao/graphs';
import type { Engine } from '@ao/actors';
import { contentHash } from '@ao/runtime';
import type { RunRecord } from '@ao/runtime';
import { ownRun } from '../auth/mod.js';
import { acceptedSerializer, startRunValidator } from './start-run-schema.js';
import type { ActiveRunCap } from '../auth/mod.js';
import {
  Accepted,
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
  SignalAccepted,
  SignalBody,
  runView,
  StartRunBody,
  StartRunHeaders,
  UsageView,
} from '../views.js';

/** What POST /runs needs besides the engine: the cap on active runs, and whether the server still takes runs. */
export interface Admission {
  cap: ActiveRunCap;
  /** Set once the server is shutting down: no new runs (503 AO_SHUTTING_DOWN). */
  draining(): boolean;
}

export function refuseWhileDraining(a: Admission): void {
  if (a.draining()) throw new AoError('AO_SHUTTING_DOWN', 'this server is shutting down and takes no new runs; send the request to another node');
}

export const runsRoutes =
  (engine: Engine, admission: Admission): FastifyPluginAsyncZod =>
  async (app) => {
    startRunRoute(app, engine, admission);

    /**
     * List the tenant's runs, newest first, a page at a time (`cursor`: the previous page's `next`);
     * search them by status, graph, creation time (`since` <= createdAt < `until`) and id prefix (`q`).
     */
    app.get(
      '/runs',
      { schema: { querystring: ListRunsQuery, response: { 200: z.object({ runs: z.array(RunSummary), next: z.string().nullable() }) } } },
      async (req) => {
        const { q, ...rest } = req.query;
        const page = await engine.queries.listRuns({ ...rest, ...(q !== undefined ? { idPrefix: q.toLowerCase() } : {}), tenant: req.principal.tenant });
        return { runs: page.runs.map(runSummary), next: page.next };
      },
    );

    app.get('/runs/:id', { schema: { params: RunIdParams, response: { 200: RunView } } }, async (req) => {
      const run = await ownRun(engine, req, req.params.id);
      const [u, ranOn] = await Promise.all([engine.queries.usage(run.id), engine.queries.ranOn(run.id)]);
      return {
        ...runView(run),
        ...(ranOn.length ? { ranOn } : {}),
        budgetUsage: u ? { limits: u.limits, used: u.used, reserved: u.reserved, ...(u.wallClock ? { wallClock: u.wallClock } : {}) } : null,
      };
    });

    app.get('/runs/:id/usage', { schema: { params: RunIdParams, response: { 200: UsageView } } }, async (req) => {
      const run = await ownRun(engine, req, req.params.id);
      return (await engine.queries.usage(run.id))!;
    });

    app.post('/runs/:id/cancel', { schema: { params: RunIdParams, response: { 202: Accepted } } }, async (req, reply) => {
      const run = await engine.cancel((await ownRun(engine, req, req.params.id)).id);
      return reply.status(202).send({ id: run.id, status: run.status });
    });

    /**
     * Answer what a run waits for (an approval, an agent's question): 202 once the answer is
     * stored; the run resumes on whichever node takes it. 400 with the field for an answer that
     * does not fit the wait's schema, 409 AO_RUN_NOT_WAITING when the run waits for nothing from
     * that node. A repeat (same wait) is answered with `duplicate: true` and changes nothing.
     */
    app.post('/runs/:id/signal', { schema: { params: RunIdParams, body: SignalBody, response: { 202: SignalAccepted } } }, async (req, reply) => {
      const run = await ownRun(engine, req, req.params.id);
      const r = await engine.signal(run.id, req.body);
      return reply.status(202).send({ id: run.id, status: r.run.status, signal: r.signal.id, wait: r.wait?.id ?? null, duplicate: r.duplicate });
    });

    logRoutes(app, engine);
  };

/** `POST /runs`. */
function startRunRoute(app: Parameters<FastifyPluginAsyncZod>[0], engine: Engine, admission: Admission): void {
  /**
   * Start a run. With `Idempotency-Key`, the tenant's first run with that key is the answer to
   * every repeat (202, its id and status now, `Idempotent-Replayed: true`); the same key with a
   * different body is 422 AO_IDEMPOTENCY_KEY_REUSED.
   */
  app.post(
    '/runs',
    {
      schema: { headers: StartRunHeaders, body: StartRunBody, response: { 202: Accepted } },
      validatorCompiler: startRunValidator,
      serializerCompiler: acceptedSerializer,
    },
    async (req, reply) => {
      const tenant = req.principal.tenant;
      const key = req.headers['idempotency-key'];
      const hash = key === undefined ? undefined : contentHash(req.body);
      const repeat = async (): Promise<RunRecord | undefined> => {
        if (key === undefined) return undefined;
        const prior = await engine.queries.findRunByIdempotencyKey(tenant, key);
        if (!prior) return undefined;
        if (prior.requestHash !== hash) {
          throw new AoError(
            'AO_IDEMPOTENCY_KEY_REUSED',
            `Idempotency-Key ${JSON.stringify(key)} was used for run ${prior.run.id} with a different request body`,
            { field: 'headers.idempotency-key' },
          );
        }
        return prior.run;
      };
      const answer = (run: RunRecord, replayed: boolean) => {
        if (replayed) void reply.header('idempotent-replayed', 'true');
        return reply.status(202).send({ id: run.id, status: run.status });
      };
      // A first submit (the common case, and every one of a burst) is one insert, the key's
      // uniqueness checked by the store; its run is looked up only when the start is refused.
      // Part of the burst from here: the cap's count may hold it up before the run is stored.
      const arrived = engine.submitting();
      try {
        refuseWhileDraining(admission);
        const run = await admission.cap.admit(tenant, () =>
          engine.startRun({ ...req.body, tenant, ...(key !== undefined ? { idempotencyKey: key, requestHash: hash! } : {}) }),
        );
        arrived();
        return answer(run, false);
      } catch (e) {
        arrived();
        // A repeat (also one that came at the same time as its first, or while draining, at the
        // cap, or after its graph was removed) is answered with the key's run.
        const run = await repeat();
        if (run) return answer(run, true);
        throw e;
      }
    },
  );
}

/** A run's log: its checkpoints and its events, a page at a time. */
function logRoutes(app: Parameters<FastifyPluginAsyncZod>[0], engine: Engine): void {
  app.get(
    '/runs/:id/checkpoints',
    { schema: { params: RunIdParams, response: { 200: z.object({ checkpoints: z.array(CheckpointSummaryView) }) } } },
    async (req) => {
      const run = await ownRun(engine, req, req.params.id);
      return { checkpoints: await engine.queries.listCheckpoints(run.id) };
    },
  );

  app.get('/runs/:id/checkpoints/:step', { schema: { params: CheckpointParams, response: { 200: CheckpointView } } }, async (req) => {
    const run = await ownRun(engine, req, req.params.id);
    const cp = await engine.queries.getCheckpoint(run.id, req.params.step);
    if (!cp) throw new AoError('AO_CHECKPOINT_NOT_FOUND', `run ${run.id} has no checkpoint ${req.params.step}`, { field: 'step' });
    return cp;
  });

  app.get('/runs/:id/events', { schema: { params: RunIdParams, querystring: ListEventsQuery, response: { 200: EventsPage } } }, async (req) => {
    const run = await ownRun(engine, req, req.params.id);
    const events = await engine.queries.listEvents(run.id, { after: req.query.after, limit: req.query.limit });
    // A full page may have more behind it; a short one is the end of the log for now.
    const next = events.length === req.query.limit ? events[events.length - 1]!.seq : null;
    return { events, next };
  });
}
