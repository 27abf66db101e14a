import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';
import { startRuntime } from '@ao/gateway';
import { defineTool, loadConfig } from '@ao/runtime';
import type { LlmPort, LlmRequest, LlmResponse } from '@ao/runtime';
import { z } from 'zod';
import { readPage, standinAnswer, W6_SYSTEM, W6_TOOL, w6User } from './conversation.js';
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
  const node = (instructions: string, maxIterations?: number) => ({
    agent: 'pipeline' as const,
    tools: ['noop'],
    args: () => ({ noop: {} }),
    instructions,
    ...(maxIterations ? { maxIterations } : {}),
  });
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

/**
 * W6: one `pipeline` agent node whose model loop reads `turns` pages, a tool call a turn, then
 * answers: `maxTurns` is `turns + 1` (the last turn offers no tools, so the model answers). One
 * node, not a loop of nodes: an agent's history lives in its node's loop (a node's prompt carries
 * upstream outputs cut to 4,000 characters, not the conversation), which is what W6 measures.
 */
export const conversationName = (turns: number): string => `cmp-conversation-${turns}`;
export const conversationGraph = (turns: number): GraphBuilder<unknown> =>
  graph(conversationName(turns))
    .node('agent', { agent: 'pipeline', tools: [W6_TOOL], maxTurns: turns + 1, instructions: W6_SYSTEM })
    .budget(BUDGET) as GraphBuilder<unknown>;

const readPageTool = defineTool({
  name: W6_TOOL,
  description: 'Read one page of the document (W6).',
  effect: 'read',
  input: z.object({ page: z.number().int().positive() }),
  handler: ({ page }) => readPage(page),
});

/**
 * W6's model for ours: the stand-in of `conversation.ts` behind our LLM port (given to
 * `startRuntime` as `llm`, so every profile answers with it; only W6's processes get it). It
 * counts the tool results in the request it is sent, as the peers' stand-ins count those in their
 * state.
 */
export class ConversationLlm implements LlmPort {
  readonly provider = 'bench-standin';
  constructor(private readonly turns: number) {}

  async complete(req: LlmRequest): Promise<LlmResponse> {
    const read = req.messages.filter((m) => m.role === 'tool').length;
    const a = standinAnswer(read, this.turns, req.tools?.some((t) => t.name === W6_TOOL) ?? false);
    const toolCalls = a.call ? [{ id: a.call.id, name: a.call.name, arguments: a.call.args }] : [];
    // About what a provider would count (4 characters a token), without serialising the history again.
    const inputTokens = Math.ceil(req.messages.reduce((n, m) => n + m.content.length, 0) / 4);
    return {
      model: 'w6-standin',
      message: { content: a.content, toolCalls },
      usage: { inputTokens, outputTokens: 10 },
      finishReason: a.call ? 'tool_calls' : 'stop',
    };
  }
}

/** Our runtime node as `ao serve` wires it (`startRuntime`), offline LLM at 0 ms (W6: its stand-in). */
export async function openOurs(o: OpenOptions): Promise<BenchSystem> {
  const env: Record<string, string> = { AO_NODE_ID: 'bench', AO_LLM_LATENCY_MS: '0', AO_LOG_LEVEL: 'warn' };
  if (o.dataDir) env.AO_DATA_DIR = o.dataDir;
  if (o.dbUrl) env.DATABASE_URL = o.dbUrl;
  if (o.natsUrl) env.NATS_URL = o.natsUrl;
  if (o.natsPrefix) env.AO_NATS_PREFIX = o.natsPrefix;
  const rt = await startRuntime(loadConfig(env), {
    graphs: [
      pipelineGraph('cmp-pipeline', () => 'noop'),
      pipelineGraph('cmp-crash', (i) => (i === 3 ? 'bench_hang' : 'noop')),
      fanoutGraph(),
      ...[...new Set([10, o.loopSteps ?? 1000])].map(loopGraph),
      ...(o.w6Turns ? [conversationGraph(o.w6Turns)] : []),
    ],
    tools: [benchHang, ...(o.w6Turns ? [readPageTool] : [])],
    ...(o.w6Turns ? { llm: new ConversationLlm(o.w6Turns) } : {}),
  });
  const { engine } = rt;
  const run = async (graphName: string, input: Record<string, unknown> = {}, timeoutMs = TIMEOUT_MS): Promise<string> => {
    const r = await engine.startRun({ graph: graphName, input });
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
      const cps = await engine.queries.listCheckpoints(id);
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
      if (failed[0])
        console.error(`[ours] ${failed.length} resumed runs did not succeed, e.g. ${failed[0].id}: ${failed[0].status} ${JSON.stringify(failed[0].error)}`);
      return failed.length;
    },
    async conversation(turns) {
      const id = await run(conversationName(turns), { task: w6User(turns) });
      const done = await engine.queries.getRun(id);
      if (!JSON.stringify(done?.output).includes(standinAnswer(turns, turns, false).content))
        throw new Error(`conversation ${id} ended without the final answer`);
      return id;
    },
    startConversation: async (turns) => (await engine.startRun({ graph: conversationName(turns), input: { task: w6User(turns) } })).id,
    async resumeConversation(id, turns) {
      // Recovery is automatic: the restarted node reclaims the run and its agent loop goes on
      // from its journal (the model's answers and the tool results so far are read back, not made again).
      const done = await engine.waitForRun(id, TIMEOUT_MS);
      const ok = done.status === 'succeeded' && JSON.stringify(done.output).includes(standinAnswer(turns, turns, false).content);
      if (!ok) console.error(`[ours] the resumed conversation ${id} ended ${done.status}: ${JSON.stringify(done.error ?? done.output).slice(0, 500)}`);
      return ok;
    },
    close: () => rt.close(),
  };
}
