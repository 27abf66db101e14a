import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { LogController } from 'fastify';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { FastifyPluginAsyncZod, ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Engine } from '@ao/actors';
import { ActiveRunCap, Authenticator, gatewayEnv, limitsOf, registerGuard, StreamSlots } from './auth/mod.js';
import type { AuthOptions, Limits } from './auth/mod.js';
import { body, errorHandler } from './errors.js';
import { registerPages } from './pages.js';
import { graphsRoutes } from './routes/graphs.js';
import { nodesRoutes } from './routes/nodes.js';
import { replayRoutes } from './routes/replay.js';
import { runFilesRoutes } from './routes/run-files.js';
import { runsRoutes } from './routes/runs.js';
import type { Admission } from './routes/runs.js';
import { streamRoutes } from './routes/stream.js';
import { DEFAULT_STREAM_LIMITS, StreamHub } from '../stream/mod.js';
import type { RunSource, StreamLimits } from '../stream/mod.js';
import { Health } from './views.js';

/**
 * The inspector's static build: in an installed package, the copy beside the compiled code
 * (`dist/inspector/`, put there by scripts/build-packages.mjs); in the workspace, the inspector's
 * own output (`inspector/build/`, scripts/build-inspector.mjs).
 */
export const INSPECTOR_BUILD = inspectorBuild();

function inspectorBuild(): string {
  const packaged = fileURLToPath(new URL('../inspector', import.meta.url));
  return existsSync(packaged) ? packaged : fileURLToPath(new URL('../../../inspector/build', import.meta.url));
}

export interface AppOptions {
  /** Fastify's (pino) logger; `base` replaces pino's default bindings (`ao serve` adds the node id to pid and host name). */
  logger?: boolean | { level: string; base?: Record<string, unknown>; stream?: { write(line: string): void } };
  /** LLM answers as they are written (the runtime's DeltaFeed): forwarded on run streams as `delta` frames. */
  deltas?: RunSource['deltas'];
  /** Serve the inspector's build at `/` when present. */
  inspectorDir?: string | false;
  /** Largest request body (bytes); default `AO_BODY_LIMIT`, 1 MiB. */
  bodyLimit?: number;
  llmProvider?: string;
  /** Bounds of the WebSocket streams (per connection); the defaults suit a browser. */
  stream?: Partial<StreamLimits>;
  /** Auth and limits; each defaults to its environment variable (`AO_REQUIRE_AUTH`, `AO_RATE_LIMIT`, ...). */
  limits?: Partial<Limits>;
  /** How long verified keys are cached (revocation takes this long); default 5 s. */
  authCacheMs?: number;
}

/** The gateway's door: who may come in, how much, and whether it still takes runs. */
export interface Gate {
  auth: Authenticator;
  limits: Limits;
  slots: StreamSlots;
  readonly draining: boolean;
  /** Stop taking runs (SIGTERM): POST /runs and replays answer 503 AO_SHUTTING_DOWN, /health 503. */
  drain(): void;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** The live streams this app serves (`GET /runs/:id/stream`, `GET /stream`). */
    streams: StreamHub;
    gate: Gate;
  }
}

/** GET /health: 200 while the app takes runs, 503 once it drains. */
const healthRoutes =
  (engine: Engine, llm: string, draining: () => boolean): FastifyPluginAsyncZod =>
  async (app) => {
    app.get('/health', { schema: { security: [], response: { 200: Health, 503: Health } } }, async (_req, reply) => {
      return reply.status(draining() ? 503 : 200).send({
        status: draining() ? ('draining' as const) : ('ok' as const),
        node: engine.nodeId,
        role: engine.passive ? ('gateway' as const) : ('node' as const),
        // The store's kind is a fact about the node, not run state.
        store: engine.storeKind,
        bus: engine.bus.kind,
        llm,
        activeRuns: engine.activeRuns().length,
      });
    });
  };

/** The gateway's HTTP app over an engine. Listening is the caller's business (tests use inject). */
export async function buildApp(engine: Engine, o: AppOptions = {}): Promise<FastifyInstance> {
  const limits: Limits = { ...limitsOf(gatewayEnv(process.env)), ...o.limits, ...(o.bodyLimit !== undefined ? { bodyLimit: o.bodyLimit } : {}) };
  const app = Fastify({
    logger: o.logger ?? false,
    // One access line per request (below), not Fastify's two. (Through the log controller: the
    // top-level `disableRequestLogging` option prints a FastifyDeprecation warning at every start.)
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: limits.bodyLimit,
    // A URL Fastify cannot even parse (bad percent-encoding) still gets our error shape.
    frameworkErrors: (err, _req, reply) => void (reply as FastifyReply).code(400).send(body('AO_VALIDATION', `bad request: ${err.message}`)),
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler(errorHandler);
  app.addHook('onResponse', (req, reply, done) => {
    req.log.info({ status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }, `${req.method} ${req.url} ${reply.statusCode}`);
    done();
  });
  // JSON only: any other body is a 415 with a code, not a string fed to a JSON schema.
  app.removeContentTypeParser(['text/plain']);

  // The API documented from the same zod schemas that validate it (OpenAPI at /docs/json, UI at /docs).
  await app.register(fastifySwagger, {
    openapi: {
      info: {
        title: 'agent-orchestrator',
        version: '0.1.0',
        description: 'Durable multi-agent workflows: runs, their event logs, checkpoints, replays and live streams.',
      },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API key from `ao keys create --tenant T`.' } } },
      security: [{ apiKey: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  const auth = new Authenticator(engine.apiKeys, { required: limits.requireAuth, cacheMs: o.authCacheMs ?? 5_000 } satisfies AuthOptions);
  let draining = false;
  const gate: Gate = {
    auth,
    limits,
    slots: new StreamSlots(limits.maxStreams, limits.maxStreamsTotal),
    get draining() {
      return draining;
    },
    drain: () => void (draining = true),
  };
  app.decorate('gate', gate);
  // Clients only listen: a frame from one is at most a close or a pong. Registered before the
  // guard: its onRequest hook marks upgrade requests, so an upgrade refused by the guard (401) still
  // has its socket closed after the answer.
  await app.register(fastifyWebsocket, { options: { maxPayload: 1024 } });
  const dir = o.inspectorDir === undefined ? INSPECTOR_BUILD : o.inspectorDir;
  const inspector = dir && existsSync(`${dir}/index.html`) ? dir : undefined;
  // `/runs/<id>` in a browser: the inspector's page for the run (before the guard: the page is static).
  if (inspector) registerPages(app, inspector);
  await registerGuard(app, auth, limits);
  const admission: Admission = { cap: new ActiveRunCap(engine.queries, limits.maxActiveRuns), draining: () => draining };

  await app.register(healthRoutes(engine, o.llmProvider ?? 'offline', () => draining));
  await app.register(runsRoutes(engine, admission));
  await app.register(replayRoutes(engine, admission));
  await app.register(runFilesRoutes(engine));
  await app.register(nodesRoutes(engine));
  const streams = new StreamHub(
    {
      bus: engine.bus,
      listEvents: (id, q) => engine.queries.listEvents(id, q),
      getRun: (id) => engine.queries.getRun(id),
      ...(o.deltas ? { deltas: o.deltas } : {}),
    },
    { ...DEFAULT_STREAM_LIMITS, ...o.stream },
    app.log,
  );
  app.decorate('streams', streams);
  app.addHook('preClose', async () => streams.close());
  await app.register(streamRoutes(engine, streams, gate.slots));
  await app.register(graphsRoutes(engine));

  if (inspector) await app.register(fastifyStatic, { root: inspector, wildcard: false });
  app.setNotFoundHandler((req, reply) => {
    const api = /^\/(runs|graphs|health|nodes|stream|docs)(\/|$|\?)/.test(req.url);
    if (inspector && req.method === 'GET' && !api) return reply.sendFile('index.html');
    return reply.status(404).send(body('AO_ROUTE_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`));
  });
  return app;
}
