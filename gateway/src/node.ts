import { isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Engine } from '@ao/actors';
import { AoError, exampleGraphs, isGraphBuilder } from '@ao/graphs';
import type { GraphBuilder, GraphDef } from '@ao/graphs';
import {
  builtinTools,
  connectNatsBus,
  DataDirLock,
  httpRequestTool,
  log,
  MemoryBucketTable,
  pinoLogger,
  useLogger,
  NodeIdentity,
  systemClock,
  resolveNodeId,
  resolveSecretKey,
  startTelemetry,
  InProcessBus,
  openPgliteStore,
  openPgStore,
  RunJournal,
  ToolRegistry,
} from '@ao/runtime';
import type { Bus, Config, LlmPort, NodeIdSource, Store, Telemetry, ToolDefinition } from '@ao/runtime';
import { startProviders } from './providers.js';
import type { Providers } from './providers.js';

export interface Runtime {
  engine: Engine;
  /** This node's id (`engine.nodeId`) and where it came from: AO_NODE_ID, the data dir, or made for this process. */
  nodeId: string;
  nodeIdSource: NodeIdSource;
  /**
   * Resolves if another process takes this node's id over (AO_NODE_ID_IN_USE; this one was
   * silent past its lease): the engine has stopped hosting, and the process should exit.
   */
  lost: Promise<AoError>;
  store: Store;
  bus: Bus;
  llm: LlmPort;
  /** LLM adapters by profile, MCP servers, and the live feed of answers being written (`providers.deltas`). */
  providers: Providers;
  /** OpenTelemetry export (on when OTEL_EXPORTER_OTLP_ENDPOINT is set). */
  telemetry: Telemetry;
  /**
   * Embedded store only: this process holds AO_DATA_DIR (`DataDirLock`). `ao serve` publishes its
   * HTTP address in the lock, where a CLI on the same directory finds it.
   */
  publishUrl(url: string): Promise<void>;
  close(): Promise<void>;
}

type RuntimeOptions = {
  llm?: LlmPort;
  graphs?: AnyGraph[];
  tools?: ToolDefinition[];
  passive?: boolean;
  /** Decorate the store the engine uses (the bench times its commits); `Runtime.store` stays the raw one. */
  wrapStore?: (store: Store) => Store;
  /** What the data dir's lock names as its holder (`ao serve`, `ao node`, `ao run`...). */
  command?: string;
};

export type AnyGraph = GraphBuilder<unknown> | GraphDef<unknown>;

/** Load the user modules named in AO_GRAPHS: each may export `graphs` and `tools` arrays. */
export async function loadExtensions(spec: string | undefined, cwd = process.cwd()): Promise<{ graphs: AnyGraph[]; tools: ToolDefinition[] }> {
  const graphs: AnyGraph[] = [];
  const tools: ToolDefinition[] = [];
  for (const p of (spec ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean)) {
    const file = isAbsolute(p) ? p : resolve(cwd, p);
    let mod: { graphs?: unknown; tools?: unknown };
    try {
      mod = (await import(pathToFileURL(file).href)) as typeof mod;
    } catch (e) {
      throw new AoError('AO_CONFIG_INVALID', `AO_GRAPHS: cannot load ${file}: ${(e as Error).message}`, { field: 'AO_GRAPHS', cause: e });
    }
    if (mod.graphs !== undefined && !Array.isArray(mod.graphs))
      throw new AoError('AO_CONFIG_INVALID', `${file}: \`graphs\` must be an array`, { field: 'AO_GRAPHS' });
    if (mod.tools !== undefined && !Array.isArray(mod.tools))
      throw new AoError('AO_CONFIG_INVALID', `${file}: \`tools\` must be an array`, { field: 'AO_GRAPHS' });
    for (const g of (mod.graphs as unknown[] | undefined) ?? []) {
      if (!isGraphBuilder(g) && !(typeof g === 'object' && g !== null && 'version' in g && 'nodes' in g)) {
        throw new AoError('AO_CONFIG_INVALID', `${file}: every entry of \`graphs\` must be a graph(...) builder or a built graph`, { field: 'AO_GRAPHS' });
      }
      graphs.push(g as AnyGraph);
    }
    tools.push(...((mod.tools as ToolDefinition[] | undefined) ?? []));
  }
  return { graphs, tools };
}

/**
 * The built-in tools and the given ones: a user's tool replaces a built-in one of the same name
 * (e.g. a real web_search for the offline stand-in); two user tools of one name are refused.
 */
export function toolRegistry(config: Pick<Config, 'AO_HTTP_TOOL_ALLOW'>, extra: readonly ToolDefinition[]): ToolRegistry {
  const byName = new Map<string, ToolDefinition>();
  for (const t of builtinTools) byName.set(t.name, t);
  byName.set('http_request', httpRequestTool({ allow: config.AO_HTTP_TOOL_ALLOW }));
  const builtin = new Set(byName.keys());
  for (const t of extra) {
    if (byName.has(t.name) && !builtin.has(t.name)) throw new AoError('AO_CONFIG_INVALID', `tool "${t.name}" is defined twice`, { field: 'AO_GRAPHS' });
    builtin.delete(t.name);
    byName.set(t.name, t);
  }
  const tools = new ToolRegistry();
  for (const t of byName.values()) tools.register(t);
  return tools;
}

/**
 * The example graphs and the given ones: a user's graph replaces the example of the same name (a
 * changed copy of an example, as tools replace built-in ones); two user graphs of one name are
 * refused when registered (AO_GRAPH_ALREADY_REGISTERED).
 */
export function withExamples(graphs: readonly AnyGraph[]): GraphBuilder<unknown>[] {
  const mine = new Set(graphs.map((g) => g.name));
  return [...exampleGraphs.filter((g) => !mine.has(g.name)), ...graphs] as GraphBuilder<unknown>[];
}

/**
 * The logging of an `ao serve` or `ao node` process: lines at `AO_LOG_LEVEL` as JSON on stderr
 * (the HTTP access log is Fastify's, on stdout), and a stray rejection logged loudly: a server
 * outlives it, it is never a reason to drop every run.
 */
export function setUpProcessLogging(config: Pick<Config, 'AO_LOG_LEVEL'>): void {
  useLogger(pinoLogger({ level: config.AO_LOG_LEVEL }));
  process.on('unhandledRejection', (err) => log.error('unhandled rejection (a bug; please report it)', { component: 'ao', err }));
}

/**
 * The composition root of a runtime node: with the embedded store, takes the data directory
 * (refused with AO_DATA_DIR_LOCKED while a live process holds it) before anything opens it; picks
 * each port's adapter from the config (PGlite or Postgres; the in-process bus; the offline LLM),
 * loads the user's graphs and tools, takes its node id (refused with AO_NODE_ID_IN_USE while a
 * live process holds it), and wires the engine, which resumes the runs this node held before a
 * restart.
 */
export async function startRuntime(config: Config, o: RuntimeOptions = {}): Promise<Runtime> {
  if (config.DATABASE_URL) return startOn(config, o, undefined);
  // One process per data directory: PGlite takes no lock of its own, and a second process on its
  // files would write a copy of the database the first never sees.
  const lock = await DataDirLock.acquire({ dir: config.AO_DATA_DIR, command: o.command ?? 'ao', log: (m) => log.warn(m, { component: 'ao' }) });
  try {
    const rt = await startOn(config, o, lock);
    return {
      ...rt,
      close: async () => {
        try {
          await rt.close();
        } finally {
          await lock.release();
        }
      },
    };
  } catch (e) {
    await lock.release();
    throw e;
  }
}

async function startOn(config: Config, o: RuntimeOptions, lock: DataDirLock | undefined): Promise<Runtime> {
  const ext = await loadExtensions(config.AO_GRAPHS);
  if (config.AO_FAULT_KILL_AFTER_EVENTS !== undefined) killAfterCommits(config.AO_FAULT_KILL_AFTER_EVENTS);
  // AO_NODE_ID, else the id kept beside the embedded store's data, else one made for this process.
  const { id: nodeId, source: nodeIdSource } = await resolveNodeId({
    configured: config.AO_NODE_ID,
    idFile: config.DATABASE_URL ? undefined : join(config.AO_DATA_DIR, 'node-id'),
  });
  // Spans and metrics to the OTLP endpoint in OTEL_EXPORTER_OTLP_ENDPOINT, if any (no-ops otherwise).
  const telemetry = await startTelemetry({ nodeId });
  const store = await openStore(config);
  // What is open so far, closed in reverse order if a later part fails to start.
  const undo: (() => Promise<unknown>)[] = [() => telemetry.shutdown(), () => store.close()];
  // The id before anything else: a node whose id a live process holds starts nothing (no MCP
  // server, no queue consumer) and claims no run.
  const identity = await orUndo(undo, () =>
    NodeIdentity.take({ store, id: nodeId, staleMs: config.AO_LEASE_MS, log: (m) => log.warn(m, { component: 'ao', nodeId }) }),
  );
  undo.push(() => identity.release().catch(() => undefined));
  // LLM adapters by profile (offline unless configured) and the tools of the configured MCP servers.
  const providers = await orUndo(undo, () => {
    // Provider limits: shared by every node through the store's bucket table in a cluster (the
    // embedded node is alone with its data: an in-process table is exact and costs no statement).
    const buckets = config.DATABASE_URL ? store : new MemoryBucketTable(systemClock);
    return startProviders(config, { ...(o.llm ? { llm: o.llm } : {}), buckets });
  });
  undo.push(() => providers.close());
  // NATS_URL: the JetStream bus, with the cluster's run queue and membership; else in-process.
  const bus: Bus = await orUndo(undo, async () =>
    config.NATS_URL
      ? await connectNatsBus({ url: config.NATS_URL, prefix: config.AO_NATS_PREFIX, name: nodeId, ackWaitMs: config.AO_NATS_ACK_WAIT_MS })
      : new InProcessBus(),
  );
  undo.push(() => bus.close());
  const llm = providers.defaultLlm;
  const tools = toolRegistry(config, [...ext.tools, ...(o.tools ?? []), ...providers.tools]);
  let lostIt: (e: AoError) => void = () => undefined;
  const lost = new Promise<AoError>((r) => (lostIt = r));
  const engine = await orUndo(undo, () =>
    createEngine(config, o, { store, bus, tools, providers, identity, graphs: ext.graphs, onIdentityLost: (e) => lostIt(e) }),
  );
  return {
    engine,
    nodeId,
    nodeIdSource,
    lost,
    store,
    bus,
    llm,
    providers,
    telemetry,
    publishUrl: async (url) => {
      await lock?.publishUrl(url);
    },
    close: async () => {
      // NATS down: what the engine still hands the bus on its way down (publishes and consumers,
      // which retry until NATS is back; its node tasks' requests; leaving the membership) cannot
      // land, and each would hold the node up to the engine's bound for it, one after the other
      // (up to 17 s; 7-12 s measured, longer than `docker stop` waits). Closed first, the bus
      // makes them give up at once. Nothing is lost: every envelope is committed to the store
      // before it is published, and the node that takes a run over resumes it from there, as
      // after a crash. (test/shutdown-nats-down.test.ts)
      if (bus.reachable === false) await bus.close();
      await engine.shutdown();
      await bus.close();
      await store.close();
      await providers.close();
      // Last: flush the spans of everything above, so none is lost on exit.
      await telemetry.shutdown();
    },
  };
}

/** `open()`, or, if it throws, close what `undo` holds (last opened first) and throw its error. */
async function orUndo<T>(undo: readonly (() => Promise<unknown>)[], open: () => Promise<T>): Promise<T> {
  try {
    return await open();
  } catch (e) {
    for (const close of [...undo].reverse()) await close();
    throw e;
  }
}

/** Crash tests: die without warning, mid-run, right after a commit and before its delivery. */
function killAfterCommits(limit: number): void {
  let committed = 0;
  RunJournal.afterCommit = (n) => {
    committed += n;
    if (committed >= limit) process.kill(process.pid, 'SIGKILL');
  };
}

/** The store the config names: Postgres at DATABASE_URL, else PGlite in AO_DATA_DIR. */
async function openStore(config: Config) {
  return config.DATABASE_URL
    ? await openPgStore({ url: config.DATABASE_URL, contentMinChars: config.AO_CONTENT_MIN_BYTES })
    : await openPgliteStore({
        dataDir: join(config.AO_DATA_DIR, 'pglite'),
        contentMinChars: config.AO_CONTENT_MIN_BYTES,
        template: { ...(config.AO_CACHE_DIR ? { cacheDir: config.AO_CACHE_DIR } : {}) },
        // A new data directory without the template is made as before (initdb, seconds): say why.
        onDataDir: (source, error) => {
          if (source === 'initdb')
            log.warn(`no PGlite template (${error instanceof Error ? error.message : String(error)}): making the data directory with initdb`, {
              component: 'store',
            });
        },
      });
}

/** The engine over the node's parts. */
async function createEngine(
  config: Config,
  o: RuntimeOptions,
  p: { store: Store; bus: Bus; tools: ToolRegistry; providers: Providers; identity: NodeIdentity; graphs: AnyGraph[]; onIdentityLost: (e: AoError) => void },
): Promise<Engine> {
  // The embedded store keeps a generated key beside its data; Postgres needs AO_SECRET_KEY.
  const secretKey = await resolveSecretKey({
    configured: config.AO_SECRET_KEY,
    keyFile: config.DATABASE_URL ? undefined : join(config.AO_DATA_DIR, 'secret.key'),
  });
  return Engine.create({
    maxPayloadBytes: config.AO_MAX_PAYLOAD_BYTES,
    store: o.wrapStore ? o.wrapStore(p.store) : p.store,
    bus: p.bus,
    tools: p.tools,
    llm: p.providers.llm,
    identity: p.identity,
    onIdentityLost: p.onIdentityLost,
    leaseMs: config.AO_LEASE_MS,
    taskConcurrency: config.AO_NODE_TASKS,
    prices: config.AO_PRICES,
    ...(secretKey ? { secretKey } : {}),
    ...(o.passive ? { passive: true } : {}),
    graphs: withExamples([...p.graphs, ...(o.graphs ?? [])]),
  });
}
