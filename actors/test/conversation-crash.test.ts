import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { InProcessBus, openPgStore, ToolRegistry } from '@ao/runtime';
import type { Envelope, RunRecord, Store } from '@ao/runtime';
import { createTestDatabase, postgresAvailable } from '@ao/runtime/testing';
import { Engine } from '../src/mod.js';
import { diffRuns } from '../src/replay.js';
import { conversation, readPage, reader, TURNS } from './fixtures/conversation-process.js';

/**
 * A long agent conversation SIGKILLed at many points (right after its k-th committed envelope,
 * sometimes again in the process that resumes it), then resumed by a new process (issue 22):
 * every time it ends as an uninterrupted run does (output, usage, the same requests), with a
 * gapless log without duplicates, each page read once but for the call in flight at a kill, and a
 * recorded replay that reproduces its log. The resume goes on from the agent's last resume point:
 * the log is read from there, not from the node's start.
 */
const FIXTURE = fileURLToPath(new URL('./fixtures/conversation-process.ts', import.meta.url));
const pgUp = await postgresAvailable();

interface Result {
  status: string;
  modelCalls: number;
  reads: number[];
}

/** One process of the conversation; resolves when it exits (its result, or undefined when it was killed). */
function child(env: Record<string, string>): Promise<Result | undefined> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', FIXTURE], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (b: Buffer) => (out += b.toString()));
    p.stderr.on('data', (b: Buffer) => (err = (err + b.toString()).slice(-4000)));
    p.on('exit', (code, signal) => {
      const m = /^RESULT (.*)$/m.exec(out);
      if (m) return resolve(JSON.parse(m[1]!) as Result);
      if (signal === 'SIGKILL') return resolve(undefined);
      reject(new Error(`the conversation process exited (${code ?? signal}) without a result: ${err}`));
    });
  });
}

const all = (store: Store, id: string): Promise<Envelope[]> => store.listEvents(id, { limit: 1_000_000 });
const hashes = (evs: Envelope[]) => evs.filter((e) => e.type === 'llm.request').map((e) => (e.payload as { hash: string }).hash);

describe.skipIf(!pgUp)('a long agent conversation SIGKILLed mid-node', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  it('resumes from its last resume point after each kill and ends as an uninterrupted run', { timeout: 600_000 }, async () => {
    // The reference, in this process.
    const db = await createTestDatabase();
    cleanups.push(db.drop);
    const store = await openPgStore({ url: db.url });
    cleanups.push(() => store.close());
    const llm = reader();
    const engine = await Engine.create({
      store,
      bus: new InProcessBus(),
      llm: () => llm,
      tools: new ToolRegistry().register(readPage()),
      nodeId: 'reference',
      graphs: [conversation],
      sweepIntervalMs: 0,
    });
    cleanups.push(() => engine.shutdown());
    const reference = await engine.waitForRun((await engine.startRun({ graph: 'conv-crash', input: {} })).id, 60_000);
    expect(reference.status).toBe('succeeded');
    const refEvents = await all(store, reference.id);
    // About 10 envelopes a turn: kill points spread over the conversation, some twice.
    const schedules = [[6], [23, 31], [150, 9], [211], [305, 40]];
    let pointsUsed = 0;
    for (const kills of schedules) {
      const label = `killed after ${kills.join(', then ')} envelopes`;
      const cdb = await createTestDatabase();
      cleanups.push(cdb.drop);
      const dir = await mkdtemp(join(tmpdir(), 'ao-conv-crash-'));
      cleanups.push(() => rm(dir, { recursive: true, force: true }));
      const env = { DATABASE_URL: cdb.url, CONV_RUN_FILE: join(dir, 'run'), CONV_CALLS: join(dir, 'calls') };
      for (const k of kills) expect(await child({ ...env, CONV_KILL_AFTER: String(k) }), label).toBeUndefined();
      const last = await child(env);
      expect(last?.status, label).toBe('succeeded');
      const id = (await readFile(env.CONV_RUN_FILE, 'utf8')).trim();
      const s = await openPgStore({ url: cdb.url });
      try {
        const done = (await s.getRun(id)) as RunRecord;
        expect(done.output, label).toEqual(reference.output);
        expect(done.usage, label).toEqual(reference.usage);
        const evs = await all(s, id);
        expect(
          evs.map((e) => e.seq),
          label,
        ).toEqual(evs.map((_, i) => i + 1));
        expect(new Set(evs.map((e) => e.id)).size, label).toBe(evs.length);
        expect(
          evs.filter((e) => e.type === 'run.finished'),
          label,
        ).toHaveLength(1);
        expect(evs.map((e) => e.type).sort(), label).toEqual(refEvents.map((e) => e.type).sort());
        expect(hashes(evs), label).toEqual(hashes(refEvents));
        expect((evs.filter((e) => e.type === 'llm.request').at(-1)!.payload as { messages: unknown[] }).messages, label).toHaveLength(2 + 2 * TURNS);
        // Each page read under its own key, once, but for a call in flight at a kill.
        const calls = existsSync(env.CONV_CALLS) ? (await readFile(env.CONV_CALLS, 'utf8')).split('\n').filter(Boolean) : [];
        const keys = calls.map((c) => c.split('\t')[0]!);
        expect(new Set(keys).size, label).toBe(TURNS);
        expect(keys.length - TURNS, label).toBeLessThanOrEqual(kills.length);
        expect(
          evs.filter((e) => e.type === 'tool.result'),
          label,
        ).toHaveLength(TURNS);
        // Killed past the first resume point (turn 9, about 85 envelopes in), the last process read the log from a point, not from the node's start.
        const start = evs.find((e) => e.type === 'node.start')!.seq;
        if (Math.max(...kills) > 120) {
          expect(Math.min(...last!.reads), label).toBeGreaterThan(start + 60);
          pointsUsed += 1;
        }
        // A recorded replay from the start reproduces the log.
        const replayEngine = await Engine.create({
          store: s,
          bus: new InProcessBus(),
          llm: () => reader(),
          tools: new ToolRegistry().register(readPage()),
          nodeId: 'replayer',
          graphs: [conversation],
          sweepIntervalMs: 0,
        });
        try {
          const replay = await replayEngine.waitForRun((await replayEngine.replay(id, { fromStep: 0, mode: 'recorded' })).id, 60_000);
          expect(replay.replay?.divergence ?? null, label).toBeNull();
          expect(replay.status, label).toBe('succeeded');
          const d = await diffRuns(s, done, replay);
          expect(d.first, label).toBeNull();
        } finally {
          await replayEngine.shutdown();
        }
      } finally {
        await s.close();
      }
    }
    expect(pointsUsed).toBeGreaterThanOrEqual(3);
  });
});
