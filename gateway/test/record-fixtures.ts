/**
 * Re-record the run files of the example graphs (and of the graphs recorded only for the fixtures,
 * ./fixtures/fixture-graphs.ts) under graphs/fixtures/ (`pnpm fixtures:record`).
 * gateway/test/fixtures-verify.test.ts verifies them against the checkout: when a change to an
 * example's prompts, routing or tools is meant, re-record them with this script and commit the new
 * files with the change (the diff of the files shows what the runs now do differently).
 *
 * Each case runs once on an in-memory store with the offline (deterministic) model and the
 * built-in tools, its waits answered as the case says, and is exported with `exportRun` as
 * `ao export` would, without its checkpoints (a verification replays from step 0; that keeps the
 * files small), except a case answered early (its checkpoints place the answer's step).
 */
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Engine } from '@ao/actors';
import { exampleGraphs } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { exportRun, InProcessBus, loadConfig, OfflineLlm, openPgliteStore, systemClock } from '@ao/runtime';
import type { Clock, CommitBatch, LlmPort, RunRecord, Store } from '@ao/runtime';
import { toolRegistry } from '../src/node.js';
import { graphs as fixtureGraphs } from './fixtures/fixture-graphs.js';

export const FIXTURES_DIR = fileURLToPath(new URL('../../graphs/fixtures/', import.meta.url));

/** The module of the graphs recorded only for the fixtures (AO_GRAPHS for `ao verify graphs/fixtures/`). */
export const FIXTURE_GRAPHS = fileURLToPath(new URL('./fixtures/fixture-graphs.ts', import.meta.url));

/** The graphs the fixtures were recorded with: the examples and the fixture graphs. */
export const RECORDED_GRAPHS = [...exampleGraphs, ...fixtureGraphs] as readonly GraphBuilder<unknown>[];

/** How a case's waits are answered: a payload (an approval's, a question's or a budget decision), or nobody answers until it times out. */
type Answer = Record<string, unknown> | 'timeout';

export interface FixtureCase {
  file: string;
  graph: string;
  input: unknown;
  answer?: Answer;
  /**
   * The answer is given before the wait opens, to this node (the run's model calls are held until
   * it is in): the run takes it in the step that opens the wait and never sleeps. Its file keeps
   * its checkpoints, which tell a replay at which step the answer was taken.
   */
  early?: string;
  /** What the recorded run must have ended as (the recorder checks it). */
  expect: (r: RunRecord) => boolean;
}

const THREE_DAYS_MS = 3 * 24 * 3600 * 1000;
const WAKE_SOON_MS = 3_000;

export const FIXTURE_CASES: readonly FixtureCase[] = [
  {
    file: 'triage-refund.json',
    graph: 'triage',
    input: { intent: 'refund', order: 'A-1' },
    expect: (r) => r.status === 'succeeded' && r.nodes.refund?.status === 'succeeded',
  },
  {
    file: 'triage-question.json',
    graph: 'triage',
    input: { intent: 'question' },
    expect: (r) => r.status === 'succeeded' && r.nodes.escalate?.status === 'succeeded',
  },
  { file: 'research-swarm.json', graph: 'research-swarm', input: { topic: 'actor systems' }, expect: (r) => r.status === 'succeeded' },
  { file: 'draft-critique.json', graph: 'draft-critique', input: { brief: 'a note on durable agents' }, expect: (r) => r.status === 'succeeded' },
  {
    file: 'triage-with-approval-approved.json',
    graph: 'triage-with-approval',
    input: { intent: 'refund', charge: 'ch_fixture_approved' },
    answer: { approved: true, amount: 25, comment: 'within policy' },
    expect: (r) => r.status === 'succeeded' && r.nodes.refund?.status === 'succeeded',
  },
  {
    file: 'triage-with-approval-rejected.json',
    graph: 'triage-with-approval',
    input: { intent: 'refund', charge: 'ch_fixture_rejected' },
    answer: { approved: false, comment: 'not eligible' },
    expect: (r) => r.status === 'succeeded' && r.nodes.refund?.status === 'skipped',
  },
  {
    file: 'triage-with-approval-timed-out.json',
    graph: 'triage-with-approval',
    input: { intent: 'refund', charge: 'ch_fixture_timeout' },
    answer: 'timeout',
    expect: (r) => r.status === 'succeeded' && r.nodes.refund?.status === 'skipped',
  },
  {
    file: 'triage-with-approval-escalated.json',
    graph: 'triage-with-approval',
    input: { intent: 'question' },
    expect: (r) => r.status === 'succeeded' && r.nodes.escalate?.status === 'succeeded',
  },
  {
    file: 'triage-with-approval-pre-approved.json',
    graph: 'triage-with-approval',
    input: { intent: 'refund', charge: 'ch_fixture_pre_approved' },
    answer: { approved: true, comment: 'pre-approved by the team lead' },
    early: 'refund',
    expect: (r) => r.status === 'succeeded' && r.nodes.refund?.status === 'succeeded',
  },
  {
    file: 'refund-reply-question.json',
    graph: 'refund-reply',
    input: { ticket: 'T-1042', text: 'I was charged twice, please refund one.' },
    answer: { answer: 'Order A-7731' },
    expect: (r) => r.status === 'succeeded' && r.nodes.send?.status === 'succeeded',
  },
  {
    file: 'research-on-budget-granted.json',
    graph: 'research-on-budget',
    input: { topic: 'durable agent runtimes' },
    answer: { decision: 'grant', tokens: 100_000 },
    expect: (r) => r.status === 'succeeded' && r.nodes.summarise?.status === 'succeeded',
  },
];

/**
 * The system clock, moved ahead by `aheadMs` while a case needs it: a three-day approval timeout is
 * recorded in seconds. The run opens its wait and sleeps; the store is told to wake it in a
 * moment instead of in three days (see `fastWake`), and meanwhile the engine's clock is moved
 * three days on, so the run, woken, reads its wait as timed out. The log holds what a real
 * timeout writes (the times the run read are served to a replay from the log).
 */
class SettableClock implements Clock {
  aheadMs = 0;
  now(): number {
    return Date.now() + this.aheadMs;
  }
  setTimer(ms: number, fn: () => void): () => void {
    return systemClock.setTimer(ms, fn);
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return systemClock.sleep(ms, signal);
  }
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  for (const end = Date.now() + ms; ;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const settled = (store: Store, id: string) =>
  until(`run ${id} to settle`, async () => {
    const r = await store.getRun(id);
    return r && r.status !== 'running' && r.status !== 'pending' && r.owner === null ? r : undefined;
  });

/** Record every case into `dir` (the old files there are replaced); returns each file's size. */
export async function recordFixtures(dir = FIXTURES_DIR): Promise<Array<{ file: string; bytes: number; events: number }>> {
  const real = await openPgliteStore();
  const clock = new SettableClock();
  // While on, a sleeping run is woken in WAKE_SOON_MS, whatever its wait's timeout (see SettableClock).
  let fastWake = false;
  const store: Store = new Proxy(real, {
    get(t, k) {
      if (k === 'commit') {
        return (b: CommitBatch) =>
          t.commit(fastWake && b.patch?.wakeAt ? { ...b, patch: { ...b.patch, wakeAt: new Date(Date.now() + WAKE_SOON_MS).toISOString() } } : b);
      }
      const v = Reflect.get(t, k, t) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
    },
  });
  // While `held` is set, model calls wait for it (an early answer goes in before the run reaches its wait).
  let held: Promise<void> | undefined;
  const offline = new OfflineLlm();
  const llm: LlmPort = {
    provider: offline.provider,
    async complete(req, signal) {
      if (held) await held;
      return offline.complete(req, signal);
    },
  };
  const engine = await Engine.create({
    store,
    bus: new InProcessBus(),
    llm: () => llm,
    tools: toolRegistry(loadConfig({}), []),
    graphs: RECORDED_GRAPHS,
    clock,
    claimIntervalMs: 100,
    sweepIntervalMs: 0,
  });
  const written: Array<{ file: string; bytes: number; events: number }> = [];
  try {
    await mkdir(dir, { recursive: true });
    for (const name of await readdir(dir)) if (name.endsWith('.json')) await rm(join(dir, name));
    for (const c of FIXTURE_CASES) {
      fastWake = c.answer === 'timeout';
      let release: (() => void) | undefined;
      if (c.early) held = new Promise<void>((r) => (release = r));
      const { id } = await engine.startRun({ graph: c.graph, input: c.input });
      if (c.early && c.answer && c.answer !== 'timeout') {
        await engine.signal(id, { node: c.early, payload: c.answer });
        held = undefined;
        release!();
      }
      let r = await settled(store, id);
      if (r.status === 'waiting' && c.answer === 'timeout') {
        clock.aheadMs = THREE_DAYS_MS + 60_000;
        // The claim loop wakes it once its wait is due; the run reads the wait as timed out.
        r = await until(`run ${id} to time out`, async () => {
          const x = await store.getRun(id);
          return x && x.status !== 'waiting' ? x : undefined;
        });
        r = await settled(store, id);
        fastWake = false;
        clock.aheadMs = 0;
      } else {
        // Every wait the run sleeps on is answered alike (a budget may be asked for more than once).
        while (r.status === 'waiting' && c.answer) {
          const w = r.waits[0]!;
          await engine.signal(id, { node: w.node, waitId: w.id, payload: c.answer });
          await until(`run ${id} to wake`, async () => ((await store.getRun(id))?.status !== 'waiting' ? true : undefined));
          r = await settled(store, id);
        }
      }
      if (!c.expect(r)) throw new Error(`${c.file}: the run ended ${r.status} with nodes ${JSON.stringify(r.nodes)}`);
      const file = await exportRun(store, id, { checkpoints: c.early !== undefined });
      if (c.early && file.events.some((e) => e.type === 'run.waiting')) throw new Error(`${c.file}: the run slept: the answer was not taken early`);
      const text = `${JSON.stringify(file, null, 1)}\n`;
      await writeFile(join(dir, c.file), text);
      written.push({ file: c.file, bytes: Buffer.byteLength(text), events: file.events.length });
    }
  } finally {
    await engine.shutdown();
    await real.close();
  }
  return written;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  recordFixtures().then(
    (files) => {
      for (const f of files) console.log(`${f.file.padEnd(40)} ${String(f.events).padStart(4)} events ${(f.bytes / 1024).toFixed(1).padStart(7)} KiB`);
      console.log(`recorded ${files.length} runs into ${FIXTURES_DIR}`);
    },
    (e: unknown) => {
      console.error(e);
      process.exit(1);
    },
  );
}
