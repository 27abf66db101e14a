import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestDatabase, postgresAvailable } from '@ao/runtime/testing';
import { PROCESS_TEST_MS, startServer } from './process.js';
import type { Server } from './process.js';

/**
 * Human in the loop end to end, through real `ao serve` processes: two refunds of
 * `triage-with-approval` wait for a person; the server is killed (SIGKILL) while they wait and a
 * new one is started on the same store; one refund is approved and the other rejected over HTTP.
 * The approved one calls stripe_refund exactly once; the rejected one never does; nothing before
 * the wait ran twice.
 */
const pgUp = await postgresAvailable();
type Json = Record<string, unknown> & { id: string; status: string };
interface Ev {
  seq: number;
  type: string;
  from: string;
  payload: Record<string, unknown>;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const json = async <T = Json>(res: Response): Promise<T> => (await res.json()) as T;
const post = (url: string, body: unknown) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

async function until<T>(probe: () => Promise<T | undefined>, what: string, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

async function events(base: string, id: string): Promise<Ev[]> {
  const out: Ev[] = [];
  for (let after = 0; ;) {
    const page = await json<{ events: Ev[]; next: number | null }>(await fetch(`${base}/runs/${id}/events?after=${after}&limit=1000`));
    out.push(...page.events);
    if (page.next === null) return out;
    after = page.next;
  }
}

describe.each(['pglite', 'postgres'] as const)('human in the loop end to end on %s', (kind) => {
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('approves one refund and rejects another across a SIGKILL of the server while they wait', { timeout: PROCESS_TEST_MS }, async (ctx) => {
    if (kind === 'postgres' && !pgUp) return ctx.skip();
    const dir = await mkdtemp(join(tmpdir(), `ao-hitl-${kind}-`));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const env: Record<string, string> = { AO_DATA_DIR: dir, AO_LEASE_MS: '2000' };
    if (kind === 'postgres') {
      const db = await createTestDatabase();
      cleanups.push(db.drop);
      env.DATABASE_URL = db.url;
    }
    let server: Server = await startServer(env);
    cleanups.push(() => server.kill9());

    const ids: string[] = [];
    for (const charge of ['ch_approve', 'ch_reject']) {
      const res = await post(`${server.url}/runs`, { graph: 'triage-with-approval', input: { intent: 'refund', charge } });
      expect(res.status).toBe(202);
      ids.push((await json(res)).id);
    }
    const [approveId, rejectId] = ids as [string, string];
    // Both wait for a person: listed as waiting, with the approval they wait for.
    const listed = await until(async () => {
      const page = await json<{ runs: Array<Json & { waits: Array<{ id: string; node: string; kind: string; prompt: string; schema: unknown }> }> }>(
        await fetch(`${server.url}/runs?status=waiting`),
      );
      return page.runs.length === 2 ? page.runs : undefined;
    }, 'both runs to wait');
    for (const r of listed) {
      expect(r.waits).toEqual([expect.objectContaining({ id: 'approval/refund/1', node: 'refund', kind: 'approval', prompt: 'Approve this refund?' })]);
      expect(r.waits[0]!.schema).toMatchObject({ type: 'object', required: ['approved'] });
    }
    const before = await json<Json & { owner: string | null; nodes: Record<string, { status: string }> }>(await fetch(`${server.url}/runs/${approveId}`));
    expect(before.owner).toBeNull(); // passivated: no node holds it
    expect(before.nodes.refund!.status).toBe('waiting');

    // The server dies while they wait; a new one comes up on the same store.
    await server.kill9();
    server = await startServer(env);

    // Bad answers are refused with the field; the runs still wait.
    const bad = await post(`${server.url}/runs/${approveId}/signal`, { node: 'refund', payload: { approved: true, amount: -5 } });
    expect(bad.status).toBe(400);
    expect((await json<{ error: { code: string; field: string } }>(bad)).error).toMatchObject({ code: 'AO_VALIDATION', field: 'payload.amount' });
    const wrongNode = await post(`${server.url}/runs/${approveId}/signal`, { node: 'classify', payload: { approved: true } });
    expect(wrongNode.status).toBe(409);
    expect((await json<{ error: { code: string } }>(wrongNode)).error.code).toBe('AO_RUN_NOT_WAITING');

    const yes = await post(`${server.url}/runs/${approveId}/signal`, {
      node: 'refund',
      waitId: 'approval/refund/1',
      payload: { approved: true, amount: 12.5, comment: 'ok by me' },
    });
    expect(yes.status).toBe(202);
    const yesBody = await json<{ wait: string; duplicate: boolean; signal: string }>(yes);
    expect(yesBody).toMatchObject({ wait: 'approval/refund/1', duplicate: false });
    // A double click: the same answer again changes nothing.
    const again = await post(`${server.url}/runs/${approveId}/signal`, { node: 'refund', waitId: 'approval/refund/1', payload: { approved: false } });
    expect(again.status).toBe(202);
    expect(await json(again)).toMatchObject({ duplicate: true, signal: yesBody.signal });
    const no = await post(`${server.url}/runs/${rejectId}/signal`, { node: 'refund', payload: { approved: false, comment: 'looks like fraud' } });
    expect(no.status).toBe(202);

    const ended = await until(async () => {
      const runs = await Promise.all(
        ids.map(async (id) => json<Json & { nodes: Record<string, { status: string }>; waits: unknown[] }>(await fetch(`${server.url}/runs/${id}`))),
      );
      return runs.every((r) => r.status === 'succeeded') ? runs : undefined;
    }, 'both runs to end');
    expect(ended[0]!.nodes.refund!.status).toBe('succeeded');
    expect(ended[1]!.nodes.refund!.status).toBe('skipped');
    expect(ended.every((r) => r.waits.length === 0)).toBe(true);

    const approved = await events(server.url, approveId);
    const rejected = await events(server.url, rejectId);
    const refunds = (evs: Ev[]) => evs.filter((e) => e.type === 'tool.call' && e.payload.name === 'stripe_refund');
    expect(refunds(approved)).toHaveLength(1);
    expect(refunds(rejected)).toHaveLength(0);
    for (const evs of [approved, rejected]) {
      // Nothing before the wait ran twice, and the log is gapless across the restart.
      expect(evs.filter((e) => e.type === 'node.start' && e.payload.node === 'classify')).toHaveLength(1);
      expect(evs.map((e) => e.seq)).toEqual(evs.map((_, i) => i + 1));
      expect(evs.filter((e) => e.type === 'run.waiting')).toHaveLength(1);
      expect(evs.filter((e) => e.type === 'run.resumed')).toHaveLength(1);
    }
    expect(approved.find((e) => e.type === 'wait.resolved')!.payload).toMatchObject({ approved: true, outcome: { kind: 'signal', payload: { amount: 12.5 } } });
    // The person's corrected amount reached the refund node's prompt.
    expect(JSON.stringify(approved.find((e) => e.type === 'llm.request' && e.from === 'supervisor/refund')!.payload)).toContain('12.5');

    // A run that has ended waits for nothing.
    const late = await post(`${server.url}/runs/${approveId}/signal`, { node: 'refund', payload: { approved: true } });
    expect(late.status).toBe(409);
    await server.stop();
  });
});
