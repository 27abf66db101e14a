import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAoError } from '@ao/graphs';
import type { AoError } from '@ao/graphs';
import { openPgliteStore } from '../store/pglite/pglite-store.js';
import { openPgStore } from '../store/pg/pg-store.js';
import type { Store } from '../store/mod.js';
import { createTestDatabase, postgresAvailable } from '../testing/postgres.js';
import { NodeIdentity, thisProcess } from './identity.js';
import { generateNodeId, NODE_ID_PATTERN, resolveNodeId } from './node-id.js';

const pgUp = await postgresAvailable();

/** The pid of a process that has exited (and been reaped): provably not running. */
async function deadPid(): Promise<number> {
  const p = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  await new Promise((r) => p.once('exit', r));
  return p.pid!;
}

async function refusal(p: Promise<unknown>): Promise<AoError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!isAoError(e)) throw new Error(`expected an AoError, got ${String(e)}`);
  return e;
}

describe('resolveNodeId', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ao-node-id-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('uses AO_NODE_ID when it is set', async () => {
    expect(await resolveNodeId({ configured: 'n1', idFile: join(dir, 'unused') })).toEqual({ id: 'n1', source: 'configured' });
  });

  it('makes a new id per process without a data dir (Postgres): the host name and a random suffix', async () => {
    const a = await resolveNodeId({});
    const b = await resolveNodeId({});
    expect(a.source).toBe('generated');
    expect(a.id).not.toBe(b.id);
    expect(a.id).toMatch(NODE_ID_PATTERN);
    expect(a.id).toMatch(/-[0-9a-f]{8}$/);
    expect(generateNodeId('my host.example.com')).toMatch(/^my-host\.example\.com-[0-9a-f]{8}$/);
    expect(generateNodeId('***')).toMatch(/^node-[0-9a-f]{8}$/);
  });

  it('keeps the id it made in the embedded data dir, so a restart on the same dir has the same id; processes starting at once agree', async () => {
    const file = join(dir, 'data', 'node-id');
    const ids = await Promise.all(Array.from({ length: 6 }, () => resolveNodeId({ idFile: file })));
    expect(new Set(ids.map((r) => r.id)).size).toBe(1);
    expect(ids[0]!.source).toBe('data-dir');
    expect(ids[0]!.id.startsWith(generateNodeId().slice(0, -9))).toBe(true);
    expect((await readFile(file, 'utf8')).trim()).toBe(ids[0]!.id);
    expect(await resolveNodeId({ idFile: file })).toEqual(ids[0]);
  });

  it('refuses a node id file that does not hold an id', async () => {
    const file = join(dir, 'bad-node-id');
    await writeFile(file, 'not an id!\n');
    const e = await refusal(resolveNodeId({ idFile: file }));
    expect(e.code).toBe('AO_CONFIG_INVALID');
  });
});

describe.each(['pglite', 'postgres'] as const)('NodeIdentity on %s', (kind) => {
  let store: Store;
  let drop: (() => Promise<void>) | undefined;
  const skip = () => kind === 'postgres' && !pgUp;
  beforeAll(async () => {
    if (skip()) return;
    if (kind === 'pglite') store = await openPgliteStore();
    else {
      const db = await createTestDatabase();
      store = await openPgStore({ url: db.url });
      drop = db.drop;
    }
  });
  afterAll(async () => {
    await store?.close();
    await drop?.();
  });
  const self = thisProcess();
  const elsewhere = { host: 'another-host', pidNs: 'pid:[9]', pid: 4242 };

  it('refuses an id a live process holds: it waits for a beat, then fails AO_NODE_ID_IN_USE naming that process', async (ctx) => {
    if (skip()) return ctx.skip();
    const holder = await NodeIdentity.take({ store, id: 'busy', staleMs: 600_000, self: elsewhere });
    const beating = setInterval(() => void holder.beat(), 50);
    try {
      const logs: string[] = [];
      const e = await refusal(NodeIdentity.take({ store, id: 'busy', staleMs: 600_000, log: (m) => logs.push(m) }));
      expect(e.code).toBe('AO_NODE_ID_IN_USE');
      expect(e.field).toBe('AO_NODE_ID');
      expect(e.message).toContain('pid 4242 on host another-host');
      expect(e.details).toMatchObject({ id: 'busy', host: 'another-host', pid: 4242 });
      expect(logs.join('\n')).toContain('waiting for it to beat');
      expect(await holder.beat()).toBe(true);
    } finally {
      clearInterval(beating);
      await holder.release();
    }
  });

  it('refuses an id another engine of this very process holds, although the pid is its own', async (ctx) => {
    if (skip()) return ctx.skip();
    const first = await NodeIdentity.take({ store, id: 'twice', staleMs: 600_000 });
    const beating = setInterval(() => void first.beat(), 50);
    try {
      const e = await refusal(NodeIdentity.take({ store, id: 'twice', staleMs: 600_000 }));
      expect(e.code).toBe('AO_NODE_ID_IN_USE');
      expect(e.details).toMatchObject({ host: self.host, pid: process.pid });
    } finally {
      clearInterval(beating);
      await first.release();
    }
  });

  it('takes an id at once from a process that is gone (same host and pid namespace, its pid not running), however long its lease', async (ctx) => {
    if (skip()) return ctx.skip();
    const pid = await deadPid();
    await store.takeNodeId({ id: 'crashed', instance: 'old', ...self, pid, staleMs: 3_600_000 });
    const logs: string[] = [];
    const me = await NodeIdentity.take({ store, id: 'crashed', staleMs: 600_000, log: (m) => logs.push(m) });
    expect(logs.join('\n')).toContain('a process that is gone');
    expect(await store.nodeIdHolder('crashed')).toMatchObject({ instance: me.instance, pid: process.pid, host: hostname() });
    expect(await store.beatNodeId('crashed', 'old')).toBe(false);
    await me.release();
  });

  it('takes an id held under its own pid by no live instance of this process (a container restarted as pid 1)', async (ctx) => {
    if (skip()) return ctx.skip();
    await store.takeNodeId({ id: 'pid-one', instance: 'before-restart', ...self, staleMs: 3_600_000 });
    const me = await NodeIdentity.take({ store, id: 'pid-one', staleMs: 600_000 });
    expect((await store.nodeIdHolder('pid-one'))?.instance).toBe(me.instance);
    await me.release();
  });

  it('waits for a silent holder it cannot prove gone (another host) and takes the id once its heartbeat is stale', async (ctx) => {
    if (skip()) return ctx.skip();
    await store.takeNodeId({ id: 'silent', instance: 'far', ...elsewhere, staleMs: 300 });
    const logs: string[] = [];
    const me = await NodeIdentity.take({ store, id: 'silent', staleMs: 600_000, log: (m) => logs.push(m) });
    expect(logs.join('\n')).toContain('went stale');
    expect(await store.beatNodeId('silent', 'far')).toBe(false);
    expect(await me.beat()).toBe(true);
    await me.release();
  });

  it('tells a holder whose id was taken over (it fell silent past its lease) at its next beat, and release frees the id at once', async (ctx) => {
    if (skip()) return ctx.skip();
    const first = await NodeIdentity.take({ store, id: 'taken-over', staleMs: 200, self: elsewhere });
    const second = await NodeIdentity.take({ store, id: 'taken-over', staleMs: 600_000 });
    expect(await first.beat()).toBe(false);
    expect((await first.holder())?.instance).toBe(second.instance);
    await first.release(); // not its holder any more: changes nothing
    expect(await second.beat()).toBe(true);
    await second.release();
    const third = await NodeIdentity.take({ store, id: 'taken-over', staleMs: 600_000, self: elsewhere });
    expect((await store.nodeIdHolder('taken-over'))?.instance).toBe(third.instance);
    await third.release();
  });
});
