/**
 * `pnpm --filter @ao/bench bench:w6-resume [turns...]` (default 10 1000): the work of resuming a
 * W6 conversation caught in flight, in process, so that it can be compared between lengths on a
 * loaded machine. For each length a conversation runs on a fresh store until its tool call at
 * `killTurn` (90% of the way), where it hangs, and its engine is stopped (a clean stop: no
 * SIGKILL, so PGlite has no WAL to recover; `restart to ready` in W6 measures that). Then, in
 * samples alternating between the lengths, a new store handle (empty caches) and a new engine take
 * the run over until that tool call is made again, and the sample reports the CPU time of the
 * process (`process.cpuUsage`, user + system), the wall time, and what the engine asked of the
 * store (calls per method, turn records and envelopes read). The engine is stopped again with the
 * call in flight, so every sample resumes the same log.
 *
 * BENCH_W6_RESUME_STORES: `pglite` (a data directory), `postgres` (a scratch database), or both
 * (default). BENCH_W6_RESUME_SAMPLES: samples of each length (default 5).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { Engine } from '@ao/actors';
import { builtinTools, defineTool, InProcessBus, openPgliteStore, openPgStore, ToolRegistry } from '@ao/runtime';
import type { Store } from '@ao/runtime';
import { killTurn, pageResult, W6_TOOL, w6User } from './compare/conversation.js';
import { conversationGraph, conversationName, ConversationLlm } from './compare/ours.js';
import { createScratchDatabase } from './postgres.js';

type Kind = 'pglite' | 'postgres';

/** The tool: the call for page `hang.at` never returns and tells `hang.reached`. */
const hang = { at: 0, reached: undefined as (() => void) | undefined };
const readPage = defineTool({
  name: W6_TOOL,
  description: 'Read one page (W6).',
  effect: 'read',
  input: z.object({ page: z.number().int().positive() }),
  handler: async ({ page }) => {
    if (page === hang.at) {
      hang.reached?.();
      return new Promise<never>(() => undefined);
    }
    return pageResult(page);
  },
});

function engineOn(store: Store, turns: number): Promise<Engine> {
  const tools = new ToolRegistry();
  for (const t of [...builtinTools, readPage]) tools.register(t);
  const llm = new ConversationLlm(turns);
  return Engine.create({ store, bus: new InProcessBus(), llm: () => llm, tools, nodeId: 'w6-resume', graphs: [conversationGraph(turns)] });
}

/** A store that counts what is asked of it: calls per method, and the records and envelopes its reads return. */
function counted(store: Store): { store: Store; calls: Map<string, number>; items: Map<string, number> } {
  const calls = new Map<string, number>();
  const items = new Map<string, number>();
  const size = (v: unknown): number =>
    Array.isArray(v) ? v.length : v instanceof Map ? [...v.values()].reduce<number>((n, x) => n + size(x), 0) : v === undefined ? 0 : 1;
  const proxy = new Proxy(store, {
    get(target, key) {
      const v: unknown = Reflect.get(target, key, target);
      if (typeof v !== 'function') return v;
      const name = String(key);
      return (...a: unknown[]) => {
        calls.set(name, (calls.get(name) ?? 0) + 1);
        const r = (v as (...a: unknown[]) => unknown).apply(target, a);
        if (r instanceof Promise) return r.then((x) => (items.set(name, (items.get(name) ?? 0) + size(x)), x));
        return r;
      };
    },
  });
  return { store: proxy, calls, items };
}

interface Prepared {
  turns: number;
  open: () => Promise<Store>;
  drop: () => Promise<void>;
}

async function prepare(kind: Kind, turns: number): Promise<Prepared> {
  let open: () => Promise<Store>;
  let drop: () => Promise<void>;
  if (kind === 'pglite') {
    const dir = await mkdtemp(join(tmpdir(), 'w6-resume-'));
    open = () => openPgliteStore({ dataDir: join(dir, 'data') });
    drop = () => rm(dir, { recursive: true, force: true });
  } else {
    const db = await createScratchDatabase();
    if (!db.ok) throw new Error(db.reason);
    open = () => openPgStore({ url: db.url });
    drop = db.drop;
  }
  const store = await open();
  hang.at = killTurn(turns);
  const reached = new Promise<void>((r) => (hang.reached = r));
  const engine = await engineOn(store, turns);
  await engine.startRun({ graph: conversationName(turns), input: { task: w6User(turns) } });
  await reached;
  await engine.shutdown();
  await store.close();
  return { turns, open, drop };
}

interface Sample {
  turns: number;
  cpuMs: number;
  wallMs: number;
  openCpuMs: number;
  calls: Map<string, number>;
  items: Map<string, number>;
}

/** BENCH_W6_RESUME_PROFILE=<dir>: each sample's resume (not the store's opening) profiled to `<dir>/<kind>-<turns>-<i>.cpuprofile`. */
const PROFILE_DIR = process.env.BENCH_W6_RESUME_PROFILE;
let profiled = 0;

async function sample(p: Prepared, kind: Kind): Promise<Sample> {
  const o0 = process.cpuUsage();
  const raw = await p.open();
  const o1 = process.cpuUsage(o0);
  const { store, calls, items } = counted(raw);
  hang.at = killTurn(p.turns);
  const reached = new Promise<void>((r) => (hang.reached = r));
  const session = PROFILE_DIR ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 100 });
    await session.post('Profiler.start');
  }
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const engine = await engineOn(store, p.turns);
  await reached;
  const c = process.cpuUsage(c0);
  const wallMs = performance.now() - t0;
  if (session) {
    const { profile } = await session.post('Profiler.stop');
    await writeFile(join(PROFILE_DIR!, `${kind}-${p.turns}-${profiled++}.cpuprofile`), JSON.stringify(profile));
    session.disconnect();
  }
  await engine.shutdown();
  await raw.close();
  return { turns: p.turns, cpuMs: (c.user + c.system) / 1000, wallMs, openCpuMs: (o1.user + o1.system) / 1000, calls, items };
}

const fmt = (m: Map<string, number>) =>
  [...m]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const lengths = process.argv.slice(2).length ? process.argv.slice(2).map(Number) : [10, 1000];
  const kinds = (process.env.BENCH_W6_RESUME_STORES ?? 'pglite,postgres').split(',') as Kind[];
  const samples = Number(process.env.BENCH_W6_RESUME_SAMPLES ?? '5');
  for (const kind of kinds) {
    const prepared: Prepared[] = [];
    try {
      for (const n of lengths) prepared.push(await prepare(kind, n));
      // One sample of each first, not counted (code paths compiled, the OS's file cache warm).
      for (const p of prepared) await sample(p, kind);
      const got = new Map<number, Sample[]>(lengths.map((n) => [n, []]));
      for (let i = 0; i < samples; i++) for (const p of i % 2 ? [...prepared].reverse() : prepared) got.get(p.turns)!.push(await sample(p, kind));
      console.log(
        `\n${kind}: resume of a W6 conversation stopped at 90% (load ${(await import('node:os'))
          .loadavg()
          .map((x) => x.toFixed(1))
          .join(' ')})`,
      );
      for (const [n, ss] of got) {
        console.log(
          `  ${String(n).padStart(5)} turns: CPU ms ${ss.map((s) => s.cpuMs.toFixed(0)).join(' ')} (median ${median(ss.map((s) => s.cpuMs)).toFixed(0)}); wall ms median ${median(ss.map((s) => s.wallMs)).toFixed(0)}; store open CPU ms median ${median(ss.map((s) => s.openCpuMs)).toFixed(0)}`,
        );
        console.log(`               store calls: ${fmt(ss[0]!.calls)}`);
        console.log(`               items read:  ${fmt(ss[0]!.items)}`);
      }
    } finally {
      for (const p of prepared) await p.drop();
    }
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
