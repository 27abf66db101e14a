import { join } from 'node:path';
import { Engine } from '@ao/actors';
import { exampleGraphs } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { builtinTools, InProcessBus, loadConfig, OfflineLlm, openPgliteStore, openPgStore, ToolRegistry } from '@ao/runtime';
import type { Store } from '@ao/runtime';
import { CommitTimes, timeCommits } from './timed-store.js';
import { benchPipeline, benchStop } from './workload.js';

/** A runtime node wired for the bench; `commits` times the store commits the engine makes. */
export interface BenchNode {
  engine: Engine;
  /** The raw store (untimed), for reading back what the runs wrote. */
  store: Store;
  commits: CommitTimes;
  close(): Promise<void>;
}

/**
 * A runtime node wired as `startRuntime` in gateway/src/node.ts wires it (same store adapters,
 * in-process bus, offline LLM, builtin tools, example graphs, node id and lease from the config),
 * plus the bench graph, with an instant offline LLM, and one difference: the engine gets the store
 * through {@link timeCommits}, so commit times can be measured without touching runtime code.
 * Not wired: AO_GRAPHS user modules and the crash-test fault injection, which the bench never sets.
 */
export async function openBenchNode(env: Record<string, string>): Promise<BenchNode> {
  const config = loadConfig({ AO_NODE_ID: 'bench', AO_LLM_LATENCY_MS: '0', AO_LOG_LEVEL: 'warn', ...env });
  const store = config.DATABASE_URL
    ? await openPgStore({ url: config.DATABASE_URL })
    : await openPgliteStore({ dataDir: join(config.AO_DATA_DIR, 'pglite') });
  const bus = new InProcessBus();
  const llm = new OfflineLlm({ latencyMs: 0 });
  const tools = new ToolRegistry();
  for (const t of builtinTools) tools.register(t);
  const commits = new CommitTimes();
  let engine: Engine;
  try {
    engine = await Engine.create({
      store: timeCommits(store, commits),
      bus,
      tools,
      llm: () => llm,
      nodeId: config.AO_NODE_ID,
      leaseMs: config.AO_LEASE_MS,
      graphs: [...exampleGraphs, benchPipeline(), benchStop()] as GraphBuilder<unknown>[],
    });
  } catch (e) {
    await bus.close();
    await store.close();
    throw e;
  }
  return {
    engine,
    store,
    commits,
    close: async () => {
      await engine.shutdown();
      await bus.close();
      await store.close();
    },
  };
}
