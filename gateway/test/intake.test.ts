import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, openPgStore } from '@ao/runtime';
import type { Store } from '@ao/runtime';
import { createTestDatabase, postgresAvailable } from '@ao/runtime/testing';
import type { FastifyInstance } from 'fastify';
import { buildApp, createApiKey, startRuntime } from '../src/mod.js';
import type { Runtime } from '../src/mod.js';

const pgUp = await postgresAvailable();

/**
 * A burst of POST /runs over real HTTP: the intake inserts concurrent submits together, and each
 * 202 must still mean "stored": the run is there, seen from another connection on Postgres, the
 * moment its answer arrives.
 */
describe.each([
  { kind: 'pglite' as const, skip: false },
  { kind: 'postgres' as const, skip: !pgUp },
])('intake under a burst of submits ($kind)', ({ kind, skip }) => {
  let dir: string;
  let db: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  let rt: Runtime;
  let app: FastifyInstance;
  let url: string;
  let key: string;
  /** Where the test looks for the runs: a store of its own on Postgres, the node's on PGlite (one connection per data directory). */
  let observer: Store;

  beforeAll(async () => {
    if (skip) return;
    dir = await mkdtemp(join(tmpdir(), 'ao-intake-'));
    if (kind === 'postgres') db = await createTestDatabase();
    rt = await startRuntime(loadConfig({ AO_DATA_DIR: dir, AO_NODE_ID: `intake-${kind}`, ...(db ? { DATABASE_URL: db.url } : {}) }));
    app = await buildApp(rt.engine, { inspectorDir: false, limits: { rateLimitPerMin: 0, maxActiveRuns: 0, requireAuth: true } });
    url = await app.listen({ port: 0, host: '127.0.0.1' });
    key = (await createApiKey(rt.store, { tenant: 'intake' })).key;
    observer = db ? await openPgStore({ url: db.url, max: 2 }) : rt.store;
  });
  afterAll(async () => {
    if (skip) return;
    if (observer !== rt.store) await observer.close();
    await app.close();
    await rt.close();
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  const post = (headers: Record<string, string> = {}, input: object = { intent: 'refund' }) =>
    fetch(`${url}/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers },
      body: JSON.stringify({ graph: 'triage', input }),
    });

  it.skipIf(skip)('every run of a burst is stored when its 202 arrives', async () => {
    const seen = await Promise.all(
      Array.from({ length: 60 }, async (_, i) => {
        const res = await post({ 'idempotency-key': `durable-${i}` }, { intent: 'refund', i });
        expect(res.status).toBe(202);
        const { id } = (await res.json()) as { id: string };
        // Looked up before anything else happens on this side: the commit came before the answer.
        const run = await observer.getRun(id);
        return { id, run };
      }),
    );
    for (const { id, run } of seen) expect(run?.id).toBe(id);
    await Promise.all(seen.map(({ id }) => rt.engine.waitForRun(id)));
  });

  it.skipIf(skip)('concurrent submits with one idempotency key give one run, beside others with keys of their own', async () => {
    const answers = await Promise.all([
      ...Array.from({ length: 20 }, () => post({ 'idempotency-key': 'same' })),
      ...Array.from({ length: 20 }, (_, i) => post({ 'idempotency-key': `own-${i}` })),
    ]);
    expect(answers.map((a) => a.status)).toEqual(answers.map(() => 202));
    const ids = (await Promise.all(answers.map((a) => a.json() as Promise<{ id: string }>))).map((b) => b.id);
    const same = new Set(ids.slice(0, 20));
    expect(same.size).toBe(1);
    expect(new Set(ids.slice(20)).size).toBe(20);
    expect(ids.slice(20)).not.toContain([...same][0]);
    expect(answers.slice(0, 20).filter((a) => a.headers.get('idempotent-replayed') === 'true')).toHaveLength(19);
    expect((await observer.findRunByIdempotencyKey('intake', 'same'))?.run.id).toBe([...same][0]);
    await Promise.all([...new Set(ids)].map((id) => rt.engine.waitForRun(id)));
    // One run per key in the store: 60 from the test above, 21 here.
    expect(await observer.countRuns('intake', ['succeeded'])).toBe(81);
  });

  it.skipIf(skip)('a repeat with another body is still refused with 422 AO_IDEMPOTENCY_KEY_REUSED', async () => {
    const first = await post({ 'idempotency-key': 'changed' });
    expect(first.status).toBe(202);
    const again = await post({ 'idempotency-key': 'changed' }, { intent: 'other' });
    expect(again.status).toBe(422);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe('AO_IDEMPOTENCY_KEY_REUSED');
    await rt.engine.waitForRun(((await first.json()) as { id: string }).id);
  });
});
