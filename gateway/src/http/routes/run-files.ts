import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Engine } from '@ao/actors';
import { AoError } from '@ao/graphs';
import { RunFileSchema } from '@ao/runtime';
import { ownRun } from '../auth/mod.js';
import { ExportQuery, Imported, ImportQuery, RunIdParams, unstorable } from '../views.js';

/** A run file is a whole log: larger than other request bodies may be. */
export const IMPORT_BODY_LIMIT = 64 * 1024 * 1024;

/**
 * Runs as files (`ao export`, `ao import`): a finished run of the caller's tenant as one
 * versioned document (format `ao-run`, version 1), and such a document loaded as a run of the
 * caller's tenant, to be shown, replayed from any step it has a checkpoint for, diffed and verified.
 * An id already stored is 409 AO_RUN_EXISTS. `?as=ID` stores it under a new id, its envelope ids
 * made again by a recorded replay under that id (409 AO_REPLAY_DIVERGED if it no longer reproduces
 * against the graphs registered here).
 */
export const runFilesRoutes =
  (engine: Engine): FastifyPluginAsyncZod =>
  async (app) => {
    app.get('/runs/:id/export', { schema: { params: RunIdParams, querystring: ExportQuery, response: { 200: RunFileSchema } } }, async (req) => {
      const run = await ownRun(engine, req, req.params.id);
      return engine.queries.exportRun(run.id, { checkpoints: req.query.checkpoints === 'true' });
    });

    app.post(
      '/runs/import',
      { bodyLimit: IMPORT_BODY_LIMIT, schema: { body: RunFileSchema, querystring: ImportQuery, response: { 201: Imported } } },
      async (req, reply) => {
        // What a store cannot hold (a NUL character, an unpaired surrogate) is refused at the door, not a 500.
        const why = unstorable(req.body);
        if (why) throw new AoError('AO_VALIDATION', `the run file ${why}`, { field: 'body' });
        const file = req.query.as !== undefined ? await engine.renamedRun(req.body, req.query.as) : req.body;
        // An import is a write, not a read of run state: the engine's import port.
        const run = await engine.importRun(file, { tenant: req.principal.tenant });
        return reply
          .status(201)
          .send({ id: run.id, graph: run.graph, status: run.status, events: req.body.events.length, checkpoints: req.body.checkpoints.length });
      },
    );
  };
