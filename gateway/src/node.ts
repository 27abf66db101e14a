import { join } from 'node:path';
import { Engine } from '@ao/actors';
import { exampleGraphs } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { builtinTools, InProcessBus, OfflineLlm, openPgliteStore, openPgStore, ToolRegistry } from '@ao/runtime';
import type { Bus, Config, LlmPort, Store } from '@ao/runtime';

export interface Runtime {
  engine: Engine;
  store: Store;
  bus: Bus;
  llm: LlmPort;
  close(): Promise<void>;
}

/**
 * The composition root of a runtime node: picks each port's adapter from the config (PGlite or
 * Postgres; the in-process bus; the offline LLM) and wires the engine with the example graphs.
 */
export async function startRuntime(config: Config, o: { llm?: LlmPort; graphs?: GraphBuilder<unknown>[] } = {}): Promise<Runtime> {
  const store = config.DATABASE_URL
    ? await openPgStore({ url: config.DATABASE_URL })
    : await openPgliteStore({ dataDir: join(config.AO_DATA_DIR, 'pglite') });
  const bus = new InProcessBus();
  const llm = o.llm ?? new OfflineLlm({ latencyMs: config.AO_LLM_LATENCY_MS });
  const tools = new ToolRegistry();
  for (const t of builtinTools) tools.register(t);
  let engine: Engine;
  try {
    engine = await Engine.create({
      store,
      bus,
      tools,
      llm: () => llm,
      nodeId: config.AO_NODE_ID,
      graphs: [...exampleGraphs, ...(o.graphs ?? [])] as GraphBuilder<unknown>[],
    });
  } catch (e) {
    await store.close();
    throw e;
  }
  return {
    engine,
    store,
    bus,
    llm,
    close: async () => {
      await engine.shutdown();
      await bus.close();
      await store.close();
    },
  };
}
