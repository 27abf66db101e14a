import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { startRuntime } from '@ao/gateway';
import { defineTool, loadConfig } from '@ao/runtime';
import { z } from 'zod';
import { hangTool } from './standin.js';
import { FANOUT_BRANCHES, PIPELINE_STEPS } from './system.js';
import type { BenchSystem, OpenOptions } from './system.js';

const BUDGET = { tokens: 1_000_000_000, tools: 1_000_000, wallClockSec: 3600 };
const TIMEOUT_MS = 600_000;

/** W1/W3: five sequential `pipeline` nodes, each calling `noop` (through `args`) then the offline LLM. */
function pipelineGraph(name: string, toolAt: (i: number) => string): GraphBuilder<unknown> {
  let g = graph(name);
  for (let i = 1; i <= PIPELINE_STEPS; i++) {
    const tool = toolAt(i);
    g = g.node(`s${i}`, { agent: 'pipeline', tools: [tool], args: () => ({ [tool]: {} }), instructions: `Step ${i}.` });
  }
  for (let i = 2; i <= PIPELINE_STEPS; i++) g = g.edge(`s${i - 1}`, `s${i}`);
  return g.budget(BUDGET) as GraphBuilder<unknown>;
}

/** W2: one `swarm` node of 16 branches (each: `noop`, then the LLM), joined by the node. */
const fanoutGraph = (): GraphBuilder<unknown> =>
  graph('cmp-fanout')
    .node('fan', { agent: 'swarm', concurrency: FANOUT_BRANCHES, tools: ['noop'], args: () => ({ noop: {} }), instructions: 'One branch.' })
    .budget(BUDGET) as GraphBuilder<unknown>;

/**
 * W4: a loop of `steps` node executions (each: noop + LLM): `start`, then `body` and `check`
 * alternating, the back edge taken until body has run (steps - 2) / 2 times, then `end`.
 */
export const loopName = (steps: number): string => `cmp-loop-${steps}`;
function loopGraph(steps: number): GraphBuilder<unknown> {
  const iterations = (steps - 2) / 2;
  const node = (instructions: string, maxIterations?: number) => ({ agent: 'pipeline' as const, tools: ['noop'], args: () => ({ noop: {} }), instructions, ...(maxIterations ? { maxIterations } : {}) });
  return graph(loopName(steps))
    .node('start', node('Set the task.'))
    .node('body', node('One more pass.', iterations))
    .node('check', node('Check the pass.'))
    .node('end', node('Wrap up.'))
    .edge('start', 'body')
    .edge('body', 'check')
    .edge('check', 'body', (ctx) => (ctx.iterations.body ?? 0) < iterations)
    .edge('check', 'end', (ctx) => (ctx.iterations.body ?? 0) >= iterations)
    .budget(BUDGET) as GraphBuilder<unknown>;
}

const benchHang = defineTool({
  name: 'bench_hang',
  description: 'The crash bench: hangs in the process about to be killed, returns at once after the restart.',
  effect: 'pure',
  input: z.looseObject({}),
  handler: () => hangTool(),
});

/** Our runtime node as `ao serve` wires it (`startRuntime`), offline LLM at 0 ms. */
export async function openOurs(o: OpenOptions): Promise<BenchSystem> {
  const env: Record<string, string> = { AO_NODE_ID: 'bench', AO_LLM_LATENCY_MS: '0', AO_LOG_LEVEL: 'warn' };
  if (o.dataDir) env.AO_DATA_DIR = o.dataDir;
  if (o.dbUrl) env.DATABASE_URL = o.dbUrl;
  if (o.natsUrl) env.NATS_URL = o.natsUrl;
  if (o.natsPrefix) env.AO_NATS_PREFIX = o.natsPrefix;
  const rt = await startRuntime(loadConfig(env), {
    graphs: [pipelineGraph('cmp-pipeline', () => 'noop'), pipelineGraph('cmp-crash', (i) => (i === 3 ? 'bench_hang' : 'noop')), fanoutGraph(), ...[...new Set([10, o.loopSteps ?? 1000])].map(loopGraph)],
    tools: [benchHang],
  });
  const { engine } = rt;
  const run = async (graphName: string, timeoutMs = TIMEOUT_MS): Promise<string> => {
    const r = await engine.startRun({ graph: graphName, input: {} });
    const done = await engine.waitForRun(r.id, timeoutMs);
    if (done.status !== 'succeeded') throw new Error(`run ${r.id} (${graphName}) ended ${done.status}: ${JSON.stringify(done.error)}`);
    return r.id;
  };
  return {
    usesServer: o.dbUrl !== undefined,
    pipeline: async () => void (await run('cmp-pipeline')),
    fanout: async () => void (await run('cmp-fanout')),
    loop: (steps) => run(loopName(steps)),
    async replayLast(id) {
      const cps = await engine.store.listCheckpoints(id);
      // The last checkpoint is the step that ended the run; replay from the one before it.
      const r = await engine.replay(id, { fromStep: cps.at(-1)!.step - 1, mode: 'live' });
      const done = await engine.waitForRun(r.id, TIMEOUT_MS);
      if (done.status !== 'succeeded') throw new Error(`replay ${r.id} ended ${done.status}`);
    },
    startHanging: async () => (await engine.startRun({ graph: 'cmp-crash', input: {} })).id,
    async resumeAll(ids) {
      // Recovery is automatic: the restarted node reclaims the runs it held at start-up.
      const ends = await Promise.all(ids.map((id) => engine.waitForRun(id, TIMEOUT_MS)));
      const failed = ends.filter((r) => r.status !== 'succeeded');
      if (failed[0]) console.error(`[ours] ${failed.length} resumed runs did not succeed, e.g. ${failed[0].id}: ${failed[0].status} ${JSON.stringify(failed[0].error)}`);
      return failed.length;
    },
    close: () => rt.close(),
  };
}
