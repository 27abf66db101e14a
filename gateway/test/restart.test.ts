import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, postgresAvailable } from '@ao/runtime/testing';
import { PROCESS_TEST_MS, startServer } from './process.js';

const pgUp = await postgresAvailable();

async function json(url: string, init?: RequestInit): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const startRun = (base: string, graph: string, input: unknown) =>
  json(`${base}/runs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ graph, input }) }).then(
    (r) => r.body.id as string,
  );

async function until(base: string, id: string, pred: (run: Record<string, unknown>) => boolean, ms = 30_000): Promise<Record<string, unknown>> {
  const end = Date.now() + ms;
  for (;;) {
    const run = (await json(`${base}/runs/${id}`)).body;
    if (pred(run)) return run;
    if (Date.now() > end) throw new Error(`run ${id} stuck: ${JSON.stringify(run)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.each(['pglite', 'postgres'] as const)('kill -9 and restart of ao serve on %s', (kind) => {
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c();
  });

  it('keeps every finished run and its events, and resumes the run that was in flight to the same output', { timeout: PROCESS_TEST_MS }, async (ctx) => {
    if (kind === 'postgres' && !pgUp) return ctx.skip();
    const dir = await mkdtemp(join(tmpdir(), 'ao-restart-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    // Embedded, no AO_NODE_ID: the id made at the first start is kept in the data dir, so every
    // restart on it is the same node and takes its runs back at once. Postgres: a given id.
    const env: Record<string, string> = kind === 'pglite' ? { AO_DATA_DIR: dir } : { AO_DATA_DIR: dir, AO_NODE_ID: 'n1' };
    if (kind === 'postgres') {
      const db = await createTestDatabase();
      cleanups.push(db.drop);
      env.DATABASE_URL = db.url;
    }

    const first = await startServer(env);
    cleanups.push(first.stop);
    const nodeId = (await json(`${first.url}/health`)).body.node as string;
    if (kind === 'pglite') expect((await readFile(join(dir, 'node-id'), 'utf8')).trim()).toBe(nodeId);
    const finished = [await startRun(first.url, 'triage', { intent: 'refund' }), await startRun(first.url, 'research-swarm', { topic: 'crash safety' })];
    const before = new Map<string, { run: unknown; events: unknown }>();
    for (const id of finished) {
      const run = await until(first.url, id, (r) => r.status === 'succeeded');
      before.set(id, { run, events: (await json(`${first.url}/runs/${id}/events?limit=1000`)).body.events });
    }
    await first.kill9();

    // A run still going when the process dies: its model takes a minute to answer.
    const slow = await startServer({ ...env, AO_LLM_LATENCY_MS: '60000' });
    cleanups.push(slow.stop);
    expect((await json(`${slow.url}/health`)).body.node).toBe(nodeId);
    const inflight = await startRun(slow.url, 'draft-critique', { brief: 'crash me' });
    await until(slow.url, inflight, (r) => r.status === 'running' && (r.lastSeq as number) >= 3);
    await slow.kill9();

    const second = await startServer(env);
    cleanups.push(second.stop);
    expect((await json(`${second.url}/health`)).body.node).toBe(nodeId);
    for (const id of finished) {
      expect((await json(`${second.url}/runs/${id}`)).body).toEqual(before.get(id)!.run);
      expect((await json(`${second.url}/runs/${id}/events?limit=1000`)).body.events).toEqual(before.get(id)!.events);
    }
    const resumed = await until(second.url, inflight, (r) => r.status !== 'pending' && r.status !== 'running');
    expect(resumed.status).toBe('succeeded');
    const events = (await json(`${second.url}/runs/${inflight}/events?limit=1000`)).body.events as Array<{ seq: number; type: string; id: string }>;
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
    expect(events.at(-1)!.type).toBe('run.finished');
    // Same output as a run of the same input that nothing interrupted.
    const clean = await startRun(second.url, 'draft-critique', { brief: 'crash me' });
    const cleanRun = await until(second.url, clean, (r) => r.status === 'succeeded');
    expect(resumed.output).toEqual(cleanRun.output);
    const list = (await json(`${second.url}/runs?limit=100`)).body.runs as unknown[];
    expect(list).toHaveLength(4);
  });
});
