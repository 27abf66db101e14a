import type { Engine } from '@ao/actors';
import type { GraphBuilder } from '@ao/graphs';
import { startRuntime } from '@ao/gateway';
import { loadConfig } from '@ao/runtime';
import { CommitTimes, timeCommits } from './timed-store.js';
import { benchLoop, benchPipeline, benchStop, REPLAY_LOOPS } from './workload.js';

/** A runtime node wired for the bench; `commits` times the store commits the engine makes. */
export interface BenchNode {
  /** What the runs wrote is read back through `engine.queries` (reads are not timed: only commits are). */
  engine: Engine;
  commits: CommitTimes;
  close(): Promise<void>;
}

/**
 * The runtime node `ao serve` runs (`startRuntime`), with an instant offline LLM, the bench
 * graphs, and the engine's store wrapped by {@link timeCommits}, so commit times are measured
 * without touching runtime code.
 */
export async function openBenchNode(env: Record<string, string>): Promise<BenchNode> {
  const config = loadConfig({ AO_NODE_ID: 'bench', AO_LLM_LATENCY_MS: '0', AO_LOG_LEVEL: 'warn', ...env });
  const commits = new CommitTimes();
  const rt = await startRuntime(config, {
    graphs: [benchPipeline(), benchStop(), ...REPLAY_LOOPS.map(benchLoop)] as GraphBuilder<unknown>[],
    wrapStore: (store) => timeCommits(store, commits),
  });
  return { engine: rt.engine, commits, close: rt.close };
}
