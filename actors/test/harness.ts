import { exampleGraphs } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { builtinTools, InProcessBus, OfflineLlm, openPgliteStore, openPgStore, ToolRegistry } from '@ao/runtime';
import type { LlmPort, Store } from '@ao/runtime';
import { createTestDatabase } from '@ao/runtime/testing';
import { Engine } from '../src/mod.js';

export type StoreKind = 'pglite' | 'postgres';

/** An engine on a fresh store of the given kind, with the example graphs and built-in tools. */
export async function makeEngine(
  kind: StoreKind,
  opts: { llm?: LlmPort; graphs?: GraphBuilder<unknown>[]; tools?: ToolRegistry } = {},
): Promise<{ engine: Engine; store: Store; close: () => Promise<void> }> {
  let store: Store;
  let drop: (() => Promise<void>) | undefined;
  if (kind === 'postgres') {
    const db = await createTestDatabase();
    drop = db.drop;
    store = await openPgStore({ url: db.url });
  } else {
    store = await openPgliteStore();
  }
  const tools = opts.tools ?? new ToolRegistry();
  if (!opts.tools) for (const t of builtinTools) tools.register(t);
  const llm = opts.llm ?? new OfflineLlm();
  const engine = await Engine.create({
    store,
    bus: new InProcessBus(),
    llm: () => llm,
    tools,
    graphs: [...exampleGraphs, ...(opts.graphs ?? [])] as GraphBuilder<unknown>[],
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
