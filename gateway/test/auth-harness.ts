import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify';
import { loadConfig } from '@ao/runtime';
import type { LlmPort } from '@ao/runtime';
import { buildApp, createApiKey, startRuntime } from '../src/mod.js';
import type { AppOptions, Runtime } from '../src/mod.js';

/** A gateway over a fresh PGlite store with auth and limits as given; `listen` makes its streams reachable. */
export interface AuthGateway {
  app: FastifyInstance;
  rt: Runtime;
  /** ws://host:port once listening. */
  ws: string;
  /** A new key for the tenant; the cache is reset so the app sees it at once. */
  key(tenant: string, o?: { readOnly?: boolean }): Promise<string>;
  /** `app.inject` with the key as a Bearer token (none: no Authorization header). */
  as(key: string | undefined, opts: InjectOptions): Promise<LightMyRequestResponse>;
  start(key: string | undefined, body?: object, headers?: Record<string, string>): Promise<string>;
  close(): Promise<void>;
}

export async function authGateway(o: { app?: AppOptions; llm?: LlmPort; listen?: boolean } = {}): Promise<AuthGateway> {
  const dir = await mkdtemp(join(tmpdir(), 'ao-auth-'));
  const rt = await startRuntime(loadConfig({ AO_DATA_DIR: dir, AO_NODE_ID: 'auth-test' }), o.llm ? { llm: o.llm } : {});
  const app = await buildApp(rt.engine, { inspectorDir: false, ...o.app });
  let ws = '';
  if (o.listen) {
    await app.listen({ port: 0, host: '127.0.0.1' });
    ws = `ws://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  }
  const as = (key: string | undefined, opts: InjectOptions) =>
    app.inject({ ...opts, headers: { ...(opts.headers ?? {}), ...(key ? { authorization: `Bearer ${key}` } : {}) } });
  return {
    app,
    rt,
    ws,
    async key(tenant, ko = {}) {
      const { key } = await createApiKey(rt.store, { tenant, ...ko });
      app.gate.auth.reset();
      return key;
    },
    as,
    async start(key, body = { graph: 'triage', input: { intent: 'refund' } }, headers = {}) {
      const res = await as(key, { method: 'POST', url: '/runs', payload: body, headers });
      if (res.statusCode !== 202) throw new Error(`POST /runs: ${res.statusCode} ${res.body}`);
      return (res.json() as { id: string }).id;
    },
    async close() {
      await app.close();
      await rt.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export const errorOf = (res: LightMyRequestResponse): { status: number; code: string | undefined } => ({
  status: res.statusCode,
  code: (res.json() as { error?: { code: string } }).error?.code,
});
