import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';

/** Steps in {@link benchPipeline}; per-step figures divide a run's by this. */
export const BENCH_STEPS = 5;

export const BENCH_GRAPH = 'bench-pipeline';

/**
 * The synthetic workload: five sequential `pipeline` steps, each calling the `noop` tool once
 * through `args` (so the model is not asked to pick tools) and then the offline LLM once. With the
 * offline LLM at 0 ms latency, what a run costs is the orchestration itself: actors, bus delivery,
 * journal writes and store commits.
 */
export function benchPipeline(): GraphBuilder<unknown> {
  const ids = Array.from({ length: BENCH_STEPS }, (_, i) => `step${i + 1}`);
  let g = graph(BENCH_GRAPH);
  for (const id of ids) {
    g = g.node(id, { agent: 'pipeline', tools: ['noop'], args: () => ({ noop: {} }), instructions: `Benchmark step ${id}.` });
  }
  for (let i = 1; i < ids.length; i++) g = g.edge(ids[i - 1]!, ids[i]!);
  return g.budget({ tokens: 1_000_000, tools: BENCH_STEPS * 2, wallClockSec: 120 });
}

export const BENCH_SWARM_GRAPH = 'bench-swarm';

/** Branches of the swarm step of {@link benchSwarm}. */
export const BENCH_SWARM_BRANCHES = 3;

/** Units of agent work in a {@link benchSwarm} run: the step before, each branch, the step after. */
export const BENCH_SWARM_STEPS = BENCH_SWARM_BRANCHES + 2;

/**
 * The swarm workload of the cluster bench: a `pipeline` step, a `swarm` step of
 * {@link BENCH_SWARM_BRANCHES} branches, a `pipeline` step. Every step and every branch does what a
 * {@link benchPipeline} step does (the `noop` tool once through `args`, then the offline LLM once);
 * in a cluster each branch is a node task of its own, so one run's branches can run on several nodes.
 */
export function benchSwarm(): GraphBuilder<unknown> {
  const work = { tools: ['noop'], args: () => ({ noop: {} }) };
  return graph(BENCH_SWARM_GRAPH)
    .node('before', { agent: 'pipeline', ...work, instructions: 'Benchmark step before the swarm.' })
    .node('fan', { agent: 'swarm', concurrency: BENCH_SWARM_BRANCHES, ...work, instructions: 'Benchmark branch.' })
    .node('after', { agent: 'pipeline', ...work, instructions: 'Benchmark step after the swarm.' })
    .edge('before', 'fan')
    .edge('fan', 'after')
    .budget({ tokens: 1_000_000, tools: BENCH_SWARM_STEPS * 2, wallClockSec: 120 });
}

export const BENCH_STOP_GRAPH = 'bench-stop';

/**
 * The stop workload: a swarm of 8 branches racing for a token budget too small for all of them,
 * so the budget actor refuses one mid-run and the whole tree must stop.
 */
export function benchStop(): GraphBuilder<unknown> {
  return graph(BENCH_STOP_GRAPH)
    .node('fan', { agent: 'swarm', concurrency: 8, tools: ['noop'], maxTurns: 6, instructions: 'Spend tokens until stopped.' })
    .budget({ tokens: 1500 });
}

/** Name of the loop workload whose body runs `iterations` times. */
export const benchLoopName = (iterations: number): string => `bench-loop-${iterations}`;

/**
 * A loop for the replay bench: start -> body -> check, with check -> body taken until body has run
 * `iterations` times, then end. Each iteration is two steps (two checkpoints), so the run's length
 * is about 2 x iterations + 3 steps.
 */
export function benchLoop(iterations: number): GraphBuilder<unknown> {
  return graph(benchLoopName(iterations))
    .node('start', { agent: 'pipeline', instructions: 'Set the task.' })
    .node('body', { agent: 'pipeline', maxIterations: iterations, tools: ['noop'], args: () => ({ noop: {} }), instructions: 'One more pass.' })
    .node('check', { agent: 'pipeline', instructions: 'Check the pass.' })
    .node('end', { agent: 'pipeline', instructions: 'Wrap up.' })
    .edge('start', 'body')
    .edge('body', 'check')
    .edge('check', 'body', () => true)
    .edge('check', 'end', (ctx) => (ctx.iterations.body ?? 0) >= iterations)
    .budget({ tokens: 100_000_000, tools: 100_000, wallClockSec: 3600 }) as GraphBuilder<unknown>;
}

/** Loop sizes of the replay bench: a short and a long run, replayed from their last step. */
export const REPLAY_LOOPS = [4, 499] as const;
