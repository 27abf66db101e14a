import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateNodeId, openPgStore } from '@ao/runtime';
import { createTestDatabase, dropNatsPrefix, natsAvailable, natsPrefix, postgresAvailable, queryOnce, TEST_NATS_URL } from '@ao/runtime/testing';
import { freePort, runCli, startNodeProcess, startServer } from './process.js';
import type { Server } from './process.js';
import { expectWholeLog, json, post, waitAll } from './runs.js';
import type { Env } from './runs.js';

/**
 * A node's identity with real processes on Postgres + NATS: ids are unique by default, an id a
 * live node holds is refused, and a node SIGKILLed and restarted with its id takes its runs back.
 * The runs write through `ledger_write`, a tool that appends to a file outside every process, so
 * the last test can count each effect across all of them.
 */
const FIXTURE = fileURLToPath(new URL('./fixtures/crash-graphs.ts', import.meta.url));
const pgUp = await postgresAvailable();
const natsUp = pgUp && (await natsAvailable());

type NodeProc = Awaited<ReturnType<typeof startNodeProcess>>;
interface NodeView {
  id: string;
  host?: string;
  pid?: number;
  started: string;
  runsHosted: number;
  activeRuns: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until<T>(probe: () => Promise<T | undefined | false>, what: string, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(100);
  }
}

const lines = async (file: string): Promise<string[]> => (existsSync(file) ? (await readFile(file, 'utf8')).split('\n').filter(Boolean) : []);

describe.skipIf(!natsUp)('node ids on Postgres + NATS: unique by default, refused while taken, taken back after a crash', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>;
  let dir: string;
  let ledger: string;
  let gateway: Server;
  let env: Record<string, string>;
  const prefix = natsPrefix('nid');
  const started: Array<{ stop(): Promise<void> }> = [];
  /** Every run the tests made, and whether a node was killed while it ran. */
  const made: Array<{ id: string; crashed: boolean }> = [];
  const nodes = async () => (await json<{ nodes: NodeView[] }>(`${gateway.url}/nodes`)).nodes;
  const startRuns = async (n: number, label: string, crashed = false) => {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await post(`${gateway.url}/runs`, { graph: 'crash-pipeline', input: { batch: `${label}-${i}` } })).id);
    made.push(...ids.map((id) => ({ id, crashed })));
    return ids;
  };
  const expectAllSucceeded = async (ids: string[]) => {
    const finished = await waitAll(gateway.url, ids, 180_000);
    expect([...finished.entries()].filter(([, r]) => r.status !== 'succeeded').map(([id, r]) => `${id}: ${r.status}`)).toEqual([]);
    for (const id of ids) expectWholeLog((await json<{ events: Env[] }>(`${gateway.url}/runs/${id}/events?limit=1000`)).events, `run ${id}`);
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'ao-node-id-'));
    ledger = join(dir, 'ledger.tsv');
    env = {
      DATABASE_URL: db.url,
      NATS_URL: TEST_NATS_URL,
      AO_NATS_PREFIX: prefix,
      AO_DATA_DIR: dir,
      AO_GRAPHS: FIXTURE,
      AO_TEST_LEDGER: ledger,
      AO_NATS_ACK_WAIT_MS: '6000',
    };
    // A gateway without AO_NODE_ID too: it holds an id of its own and takes no runs.
    gateway = await startServer({ ...env, AO_LLM_LATENCY_MS: '15' }, ['--no-node']);
    started.push(gateway);
  });
  afterAll(async () => {
    for (const p of started.reverse()) await p.stop().catch(() => undefined);
    await db?.drop();
    await dropNatsPrefix(prefix);
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('gives two nodes started without AO_NODE_ID at the same moment different ids, and they share the runs', async () => {
    const pair = await Promise.all([startNodeProcess({ ...env, AO_LLM_LATENCY_MS: '15' }), startNodeProcess({ ...env, AO_LLM_LATENCY_MS: '15' })]);
    started.push(...pair);
    try {
      const ids = pair.map((p) => /node (\S+) running \(id made for this process/.exec(p.log())?.[1]);
      const host = generateNodeId().slice(0, -9); // the host name part of a generated id
      for (const id of ids) expect(id).toMatch(new RegExp(`^${host.replace(/\./g, '\\.')}-[0-9a-f]{8}$`));
      expect(ids[0]).not.toBe(ids[1]);
      const members = await nodes();
      expect(members.map((n) => n.id).sort()).toEqual([...ids].sort());
      for (const [i, p] of pair.entries()) expect(members.find((n) => n.id === ids[i])).toMatchObject({ host: hostname(), pid: p.proc.pid });
      const runs = await startRuns(12, 'share');
      await expectAllSucceeded(runs);
      const after = await nodes();
      for (const id of ids) expect(after.find((n) => n.id === id)!.runsHosted, `runs hosted by ${id}`).toBeGreaterThan(0);
      expect(after.reduce((sum, n) => sum + n.runsHosted, 0)).toBe(12);
    } catch (e) {
      for (const p of pair) console.error(`--- node log ---\n${p.log().slice(-3000)}`);
      throw e;
    } finally {
      for (const p of pair) await p.stop();
    }
  }, 240_000);

  let first: NodeProc;
  const takenEnv = () => ({ ...env, AO_NODE_ID: 'taken', AO_LLM_LATENCY_MS: '300', AO_LEASE_MS: '600000' });

  it("refuses a second node with a live node's id: it exits non-zero with AO_NODE_ID_IN_USE naming that node, whose runs go on untouched", async () => {
    // A lease of 10 minutes: only this node can move its runs on within the test.
    first = await startNodeProcess(takenEnv());
    started.push(first);
    const runs = await startRuns(6, 'refused');
    await until(async () => (await nodes()).find((n) => n.id === 'taken' && n.activeRuns > 0), 'runs in flight on the first node');
    const before = (await nodes()).find((n) => n.id === 'taken')!;
    const second = await runCli(['node'], takenEnv(), { timeoutMs: 120_000 });
    expect(second.code, second.stdout + second.stderr).toBe(1);
    expect(second.stderr).toContain('error AO_NODE_ID_IN_USE');
    expect(second.stderr).toContain(`pid ${first.proc.pid} on host ${hostname()}`);
    expect(second.stdout).not.toContain('running');
    await expectAllSucceeded(runs);
    // The first node hosted every run to its end, under the membership entry it started with.
    const after = (await nodes()).find((n) => n.id === 'taken')!;
    expect(after).toMatchObject({ started: before.started, pid: first.proc.pid, runsHosted: 6 });
    expect(first.proc.exitCode).toBeNull();
    expect(first.log()).not.toMatch(/lost the lease|AO_NODE_ID_IN_USE|could not resume/);
  }, 240_000);

  it('lets a node SIGKILLed mid-run restart with its id at once (its process is provably gone) and take its runs back', async () => {
    const runs = await startRuns(6, 'crashed', true);
    await until(async () => {
      const views = await Promise.all(runs.map((id) => json<{ status: string; lastSeq: number }>(`${gateway.url}/runs/${id}`)));
      return views.some((r) => r.status === 'running' && r.lastSeq >= 5);
    }, 'runs in flight');
    await first.kill9();
    const unfinished = (await Promise.all(runs.map((id) => json<{ id: string; status: string }>(`${gateway.url}/runs/${id}`)))).filter(
      (r) => r.status === 'running' || r.status === 'pending',
    );
    expect(unfinished.length, 'runs cut off by the kill').toBeGreaterThan(0);
    // The lease is 10 minutes: the runs end within the test only if the restarted node takes them back at once.
    const again = await startNodeProcess(takenEnv());
    started.push(again);
    expect(again.log()).toContain('a process that is gone');
    await expectAllSucceeded(runs);
    expect((await nodes()).find((n) => n.id === 'taken')).toMatchObject({ pid: again.proc.pid });
    expect((await nodes()).find((n) => n.id === 'taken')!.runsHosted).toBeGreaterThanOrEqual(unfinished.length);
    await again.stop();
  }, 240_000);

  it('starts a node whose id is held by a silent process it cannot prove gone once that heartbeat is stale', async () => {
    const store = await openPgStore({ url: db.url });
    try {
      // A holder on another host, which never beats again.
      expect(await store.takeNodeId({ id: 'far', instance: 'elsewhere', host: 'another-host', pidNs: '', pid: 1, staleMs: 600_000 })).toEqual({ taken: true });
    } finally {
      await store.close();
    }
    // Once the node is seen waiting for it, its lease (as recorded) becomes 1 ms: its heartbeat is
    // stale then, without a beat the waiting node could take for a sign of life.
    let shortened: Promise<unknown> | undefined;
    const node = await startNodeProcess(
      { ...env, AO_NODE_ID: 'far', AO_LLM_LATENCY_MS: '15' },
      {
        onOutput: (log) => {
          if (log.includes('is held by pid 1 on host another-host')) shortened ??= queryOnce(db.url, `update node_ids set stale_ms = 1 where id = 'far'`);
        },
      },
    );
    started.push(node);
    await shortened;
    expect(node.log()).toContain('waiting for it to beat');
    expect(node.log()).toContain('went stale; this node took the id');
    await expectAllSucceeded(await startRuns(2, 'far'));
    await node.stop();
  }, 240_000);

  it('made each ledger effect exactly once across all of the above (a file outside every process counts them)', async () => {
    const written = await lines(ledger);
    const calls = await lines(`${ledger}.calls`);
    let reexecuted = 0;
    expect(made.length).toBe(26);
    for (const { id, crashed } of made) {
      const events = (await json<{ events: Array<Env & { payload: { name?: string } }> }>(`${gateway.url}/runs/${id}/events?limit=1000`)).events;
      const recorded = events.filter((e) => e.type === 'tool.result' && e.payload.name === 'ledger_write').map((e) => `${id}/${e.payload.key}`);
      expect(recorded.length, id).toBe(4);
      // Each recorded effect is in the ledger once, and nothing unrecorded is.
      expect(
        written
          .filter((l) => l.startsWith(`${id}/`))
          .map((l) => l.split('\t')[0])
          .sort(),
        id,
      ).toEqual([...recorded].sort());
      const runCalls = calls.filter((c) => c.startsWith(`${id}/`));
      // Without a crash, every call was made once; a call in flight at the SIGKILL is made again with its key.
      if (!crashed) expect(runCalls.sort(), id).toEqual([...recorded].sort());
      else reexecuted += runCalls.length - new Set(runCalls).size;
    }
    console.log(
      `[node ids] ${made.length} runs, ${written.length} ledger effects, each once; ${reexecuted} idempotent calls in flight at the SIGKILL made again with their key`,
    );
  });
});

describe('node ids on the embedded store', () => {
  it('refuses a second ao serve on the same data dir while the first runs (the directory is locked before its id is even read); the first goes on', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ao-node-id-embedded-'));
    const first = await startServer({ AO_DATA_DIR: dir });
    try {
      const id = (await json<{ node: string }>(`${first.url}/health`)).node;
      expect((await readFile(join(dir, 'node-id'), 'utf8')).trim()).toBe(id);
      const second = await runCli(['serve'], { AO_DATA_DIR: dir, PORT: String(await freePort()), AO_LOG_LEVEL: 'silent' }, { timeoutMs: 120_000 });
      expect(second.code, second.stdout + second.stderr).toBe(1);
      // The data dir's lock refuses it before it opens the store (see data-dir-owner.test.ts), so the
      // id check behind it (AO_NODE_ID_IN_USE) is not reached.
      expect(second.stderr).toContain(
        `error AO_DATA_DIR_LOCKED: the data directory ${dir} is in use by \`ao serve\` (pid ${first.proc.pid} on host ${hostname()}`,
      );
      expect(second.stdout).not.toContain('listening');
      const run = await post(`${first.url}/runs`, { graph: 'triage', input: { intent: 'refund' } });
      const done = await waitAll(first.url, [run.id], 60_000);
      expect(done.get(run.id)!.status).toBe('succeeded');
    } finally {
      await first.stop();
      await rm(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
