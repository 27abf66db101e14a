import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AoError } from '@ao/graphs';
import type { RunRecord } from '@ao/runtime';
import { OPEN_PRINCIPAL } from './authenticator.js';
import type { Authenticator, Principal } from './authenticator.js';
import type { Limits } from './limits.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is asking (set before anything else runs); `OPEN_PRINCIPAL` in open mode. */
    principal: Principal;
  }
}

const API = /^\/(runs|graphs|nodes|stream)(\/|$)/;
const READS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Whether a request needs a key (once keys are in use): every API route. Public: `/health`, the
 * API docs (`/docs`), and GETs of anything else (the inspector's static files, which hold no data).
 */
export function isProtected(method: string, url: string): boolean {
  const path = url.split('?', 1)[0]!;
  if (path === '/health' || path === '/docs' || path.startsWith('/docs/')) return false;
  return API.test(path) || !READS.has(method);
}

const isUpgrade = (req: FastifyRequest) => String(req.headers.upgrade ?? '').toLowerCase() === 'websocket';

/**
 * The key a request presents: `Authorization: Bearer <key>`, or `X-API-Key: <key>`, or, for a
 * WebSocket upgrade only (browsers cannot set headers on one), `?access_token=<key>`. Another
 * Authorization scheme counts as a wrong key, not as none.
 */
export function credentialOf(req: FastifyRequest): string | undefined {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && auth.length) return /^Bearer +(\S+) *$/i.exec(auth)?.[1] ?? auth;
  const x = req.headers['x-api-key'];
  if (typeof x === 'string' && x.length) return x;
  if (isUpgrade(req)) {
    const q = req.query as Record<string, unknown> | undefined;
    const t = q?.access_token;
    if (q && 'access_token' in q) delete q.access_token; // not a parameter of the route: its schema never sees it
    if (typeof t === 'string' && t.length) return t;
  }
  return undefined;
}

/**
 * Authentication, read-only keys and the per-key rate limit, as hooks that run before any route:
 * a request that gets past them carries its `principal`. Register before the routes (the rate
 * limit hooks into each route as it is added).
 */
export async function registerGuard(app: FastifyInstance, auth: Authenticator, limits: Limits): Promise<void> {
  app.decorateRequest('principal', null as unknown as Principal);
  app.addHook('onRequest', async (req, reply) => {
    req.principal = OPEN_PRINCIPAL;
    const guarded = isProtected(req.method, req.url);
    const presented = credentialOf(req);
    if (presented === undefined) {
      if (guarded && (await auth.required())) {
        void reply.header('www-authenticate', 'Bearer');
        throw new AoError('AO_UNAUTHORIZED', 'this route needs an API key: send Authorization: Bearer <key> (create one with `ao keys create --tenant T`)');
      }
      return;
    }
    const p = await auth.verify(presented);
    if (!p) {
      if (!guarded) return;
      void reply.header('www-authenticate', 'Bearer error="invalid_token"');
      throw new AoError('AO_UNAUTHORIZED', 'the API key is not valid (unknown, revoked or malformed)');
    }
    req.principal = p;
    if (guarded && p.readOnly && !READS.has(req.method)) {
      throw new AoError('AO_KEY_READ_ONLY', `key ${p.keyId} is read-only: it may not ${req.method} ${req.url.split('?', 1)[0]}`);
    }
  });
  if (limits.rateLimitPerMin > 0) {
    await app.register(rateLimit, {
      global: true,
      max: limits.rateLimitPerMin,
      timeWindow: 60_000,
      // The key's id when one was presented and verified, else the client's address.
      keyGenerator: (req) => (req.principal?.keyId ? `key:${req.principal.keyId}` : `ip:${req.ip}`),
      allowList: (req) => req.url === '/health',
      errorResponseBuilder: (req, ctx) =>
        new AoError(
          'AO_RATE_LIMITED',
          `more than ${ctx.max} requests a minute from ${req.principal?.keyId ? `key ${req.principal.keyId}` : 'this address'}; retry in ${ctx.after}`,
          {
            details: { limit: ctx.max, retryAfterMs: ctx.ttl },
          },
        ),
    });
  }
}

/**
 * The run if the caller's tenant owns it. Another tenant's run is reported exactly as a run that
 * does not exist (404 AO_RUN_NOT_FOUND), so its existence does not leak.
 */
export function visible(req: FastifyRequest, run: RunRecord | undefined): run is RunRecord {
  return run !== undefined && run.tenant === (req.principal ?? OPEN_PRINCIPAL).tenant;
}
