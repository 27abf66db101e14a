import { exampleGraphs } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { builtinTools, InProcessBus, OfflineLlm, openPgliteStore, openPgStore, ToolRegistry } from '@ao/runtime';
import type { Bus, Envelope, LlmPort, Store, ToolDefinition } from '@ao/runtime';
import { createTestDatabase } from '@ao/runtime/testing';
import { Engine } from '../src/mod.js';
import type { PriceTable } from '../src/budget/ledger.js';

export type StoreKind = 'pglite' | 'postgres';

/** A tool registry with the built-in tools and any `extra` ones. */
export function toolsWith(...extra: ToolDefinition[]): ToolRegistry {
  const tools = new ToolRegistry();
  for (const t of [...builtinTools, ...extra]) tools.register(t);
  return tools;
}

/** A fresh store of the given kind (a Postgres test database, dropped by `drop`, or an in-memory PGlite). */
export async function openStore(kind: StoreKind): Promise<{ store: Store; drop?: () => Promise<void> }> {
  if (kind === 'pglite') return { store: await openPgliteStore() };
  const db = await createTestDatabase();
  return { store: await openPgStore({ url: db.url }), drop: db.drop };
}

/** An engine on a fresh store of the given kind, with the example graphs and built-in tools. */
export async function makeEngine(
  kind: StoreKind,
  opts: {
    llm?: LlmPort;
    graphs?: GraphBuilder<unknown>[];
    tools?: ToolRegistry;
    leaseMs?: number;
    sweepIntervalMs?: number;
    secretKey?: Uint8Array;
    prices?: PriceTable;
  } = {},
): Promise<{ engine: Engine; store: Store; close: () => Promise<void> }> {
  const { store, drop } = await openStore(kind);
  const tools = opts.tools ?? toolsWith();
  const llm = opts.llm ?? new OfflineLlm();
  const engine = await Engine.create({
    store,
    bus: new InProcessBus(),
    llm: () => llm,
    tools,
    graphs: [...exampleGraphs, ...(opts.graphs ?? [])] as GraphBuilder<unknown>[],
    ...(opts.leaseMs !== undefined ? { leaseMs: opts.leaseMs } : {}),
    ...(opts.sweepIntervalMs !== undefined ? { sweepIntervalMs: opts.sweepIntervalMs } : {}),
    ...(opts.secretKey ? { secretKey: opts.secretKey } : {}),
    ...(opts.prices ? { prices: opts.prices } : {}),
  });
  return {
    engine,
    store,
    close: async () => {
      await engine.shutdown();
      await store.close();
      await drop?.();
    },
  };
}

/**
 * One runtime node on a store it may share with other nodes (each with its own bus and actor
 * system), as when several processes point at one database. The caller owns the store.
 */
export function startNode(o: {
  store: Store;
  nodeId: string;
  /** One model for every profile, or a model per profile (a node's `llm` option). */
  llm?: LlmPort | ((profile: string) => LlmPort);
  graphs?: GraphBuilder<unknown>[];
  tools?: ToolRegistry;
  leaseMs?: number;
  claimIntervalMs?: number;
  sweepIntervalMs?: number;
  secretKey?: Uint8Array;
  /** Its own bus (default: a new in-process one). */
  bus?: Bus;
}): Promise<Engine> {
  const llm = o.llm ?? new OfflineLlm();
  return Engine.create({
    store: o.store,
    bus: o.bus ?? new InProcessBus(),
    llm: typeof llm === 'function' ? llm : () => llm,
    tools: o.tools ?? toolsWith(),
    nodeId: o.nodeId,
    graphs: (o.graphs ?? []) as GraphBuilder<unknown>[],
    ...(o.leaseMs !== undefined ? { leaseMs: o.leaseMs } : {}),
    ...(o.claimIntervalMs !== undefined ? { claimIntervalMs: o.claimIntervalMs } : {}),
    sweepIntervalMs: o.sweepIntervalMs ?? 0,
    ...(o.secretKey ? { secretKey: o.secretKey } : {}),
  });
}

/** Poll `probe` until it returns something other than undefined/false; throws after `ms`. */
export async function until<T>(probe: () => Promise<T | undefined | false> | T | undefined | false, what: string, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(10);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Every event of a run, in seq order. */
export const allEvents = (store: Store, runId: string): Promise<Envelope[]> => store.listEvents(runId, { limit: 1_000_000 });

/** A promise the test settles: a tool or model call awaiting it is "in flight" until then. */
export function gate<T = void>(): { promise: Promise<T>; open: (v: T) => void } {
  let open!: (v: T) => void;
  const promise = new Promise<T>((r) => (open = r));
  return { promise, open };
}

/** A model that delays each answer by `ms` and counts its calls (aborting the signal cuts the delay short). */
/** An offline model that counts the calls made (`calls`) and the calls that answered (`answered`; an aborted call does not). */
export function countingLlm(latencyMs = 0): LlmPort & { calls: number; answered: number } {
  const inner = new OfflineLlm({ latencyMs });
  const llm = {
    provider: inner.provider,
    calls: 0,
    answered: 0,
    async complete(req: Parameters<LlmPort['complete']>[0], signal?: AbortSignal) {
      llm.calls += 1;
      const answer = await inner.complete(req, signal);
      llm.answered += 1;
      return answer;
    },
  };
  return llm;
}
