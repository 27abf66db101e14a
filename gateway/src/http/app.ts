import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import fastifyWebsocket from '@fastify/websocket';
import Fastify from 'fastify';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Engine } from '@ao/actors';
import { body, errorHandler } from './errors.js';
import { graphsRoutes } from './routes/graphs.js';
import { replayRoutes } from './routes/replay.js';
import { runsRoutes } from './routes/runs.js';
import { streamRoutes } from './routes/stream.js';
import { DEFAULT_STREAM_LIMITS, StreamHub } from '../stream/mod.js';
import type { StreamLimits } from '../stream/mod.js';
import { Health } from './views.js';

/** Where the inspector's static build lands (`pnpm --filter @ao/inspector build`). */
export const INSPECTOR_BUILD = fileURLToPath(new URL('../../../inspector/build', import.meta.url));

export interface AppOptions {
  logger?: boolean | { level: string };
  /** Serve the inspector's build at `/` when present. */
  inspectorDir?: string | false;
  bodyLimit?: number;
  llmProvider?: string;
  /** Bounds of the WebSocket streams (per connection); the defaults suit a browser. */
  stream?: Partial<StreamLimits>;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The live streams this app serves (`GET /runs/:id/stream`, `GET /stream`). */
    streams: StreamHub;
  }
}

/** The gateway's HTTP app over an engine. Listening is the caller's business (tests use inject). */
export async function buildApp(engine: Engine, o: AppOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: o.logger ?? false,
    bodyLimit: o.bodyLimit ?? 1024 * 1024,
    // A URL Fastify cannot even parse (bad percent-encoding) still gets our error shape.
    frameworkErrors: (err, _req, reply) => void (reply as FastifyReply).code(400).send(body('AO_VALIDATION', `bad request: ${err.message}`)),
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(errorHandler);
  // JSON only: any other body is a 415 with a code, not a string fed to a JSON schema.
  app.removeContentTypeParser(['text/plain']);

  app.get('/health', { schema: { response: { 200: Health } } }, async () => ({
    status: 'ok' as const,
    node: engine.nodeId,
    store: engine.store.kind,
    bus: engine.bus.kind,
    llm: o.llmProvider ?? 'offline',
    activeRuns: engine.activeRuns().length,
  }));
  await app.register(runsRoutes(engine));
  await app.register(replayRoutes(engine));
  const streams = new StreamHub({ bus: engine.bus, listEvents: (id, q) => engine.listEvents(id, q), getRun: (id) => engine.getRun(id) }, { ...DEFAULT_STREAM_LIMITS, ...o.stream }, app.log);
  app.decorate('streams', streams);
  app.addHook('preClose', async () => streams.close());
  // Clients only listen: a frame from one is at most a close or a pong.
  await app.register(fastifyWebsocket, { options: { maxPayload: 1024 } });
  await app.register(streamRoutes(engine, streams));
  await app.register(graphsRoutes(engine));

  const dir = o.inspectorDir === undefined ? INSPECTOR_BUILD : o.inspectorDir;
  const inspector = dir && existsSync(`${dir}/index.html`) ? dir : undefined;
  if (inspector) await app.register(fastifyStatic, { root: inspector, wildcard: false });
  app.setNotFoundHandler((req, reply) => {
    const api = /^\/(runs|graphs|health|nodes|stream)(\/|$|\?)/.test(req.url);
    if (inspector && req.method === 'GET' && !api) return reply.sendFile('index.html');
    return reply.status(404).send(body('AO_ROUTE_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`));
  });
  return app;
}
