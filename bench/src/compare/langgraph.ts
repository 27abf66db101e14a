import { AIMessage, HumanMessage, SystemMessage, ToolMessage } from '@langchain/core/messages';
import { Annotation, END, MessagesAnnotation, Send, START, StateGraph } from '@langchain/langgraph';
import { PostgresSaver } from '@langchain/langgraph-checkpoint-postgres';
import { readPage, standinAnswer, W6_SYSTEM, w6User } from './conversation.js';
import { fakeLlm, hangTool, noopTool } from './standin.js';
import { FANOUT_BRANCHES, PIPELINE_STEPS } from './system.js';
import type { BenchSystem, OpenOptions } from './system.js';

/**
 * LangGraph.js as its users write it: a `StateGraph` compiled with the Postgres checkpointer, one
 * node per step (the node calls the LLM stand-in, then the tool), invoked per thread. Checkpoints
 * are written with `durability: "sync"` (each step's checkpoint committed before the next step
 * starts), the guarantee ours and DBOS give; LangGraph's default, "async", writes it while the
 * next step runs.
 */
const State = Annotation.Root({
  step: Annotation<number>({ reducer: (_a, b) => b, default: () => 0 }),
  last: Annotation<string>({ reducer: (_a, b) => b, default: () => '' }),
});
type S = typeof State.State;

const FanState = Annotation.Root({
  results: Annotation<string[]>({ reducer: (a, b) => a.concat(b), default: () => [] }),
  joined: Annotation<number>({ reducer: (_a, b) => b, default: () => 0 }),
});

async function work(s: S, tool: () => Promise<unknown>): Promise<Partial<S>> {
  const text = await fakeLlm(`step ${s.step + 1} after ${s.last}`);
  await tool();
  return { step: s.step + 1, last: text };
}

function pipeline(saver: PostgresSaver, hangAt?: number) {
  // Nodes are added in a loop, which the builder's literal node-name types cannot follow.
  const g = new StateGraph(State) as unknown as StateGraph<typeof State.spec, S, Partial<S>, string>;
  for (let i = 1; i <= PIPELINE_STEPS; i++) g.addNode(`s${i}`, (s: S) => work(s, i === hangAt ? hangTool : () => noopTool({})));
  g.addEdge(START, 's1');
  for (let i = 2; i <= PIPELINE_STEPS; i++) g.addEdge(`s${i - 1}`, `s${i}`);
  g.addEdge(`s${PIPELINE_STEPS}`, END);
  return g.compile({ checkpointer: saver });
}

function loop(saver: PostgresSaver, steps: number) {
  return new StateGraph(State)
    .addNode('loop_step', (s: S) => work(s, () => noopTool({})))
    .addEdge(START, 'loop_step')
    .addConditionalEdges('loop_step', (s: S) => (s.step < steps ? 'loop_step' : END))
    .compile({ checkpointer: saver });
}

/** Map-reduce as LangGraph documents it: `Send` one branch task per item, a reducer collects, a join node follows. */
function fanout(saver: PostgresSaver) {
  return new StateGraph(FanState)
    .addNode('branch', async (s: { i: number }) => {
      const text = await fakeLlm(`branch ${s.i}`);
      await noopTool({});
      return { results: [text] };
    })
    .addNode('join', (s: typeof FanState.State) => ({ joined: s.results.length }))
    .addConditionalEdges(START, () => Array.from({ length: FANOUT_BRANCHES }, (_, i) => new Send('branch', { i })))
    .addEdge('branch', 'join')
    .addEdge('join', END)
    .compile({ checkpointer: saver });
}

type M = typeof MessagesAnnotation.State;

/**
 * W6: the agent loop as LangGraph's docs write it: a `messages` state (`MessagesAnnotation`, its
 * append reducer), a `model` node that answers from the whole history and a `tools` node that runs
 * the calls of the last AI message, the model node routed to the tools while it calls one. The
 * model is the stand-in of `conversation.ts` (it always has the tool; it stops once all pages are
 * read); the tools node is written out instead of `ToolNode`, so no tool schema machinery runs.
 */
function conversation(saver: PostgresSaver, turns: number) {
  return new StateGraph(MessagesAnnotation)
    .addNode('model', (s: M) => {
      const a = standinAnswer(s.messages.filter((m) => ToolMessage.isInstance(m)).length, turns, true);
      return {
        messages: [
          new AIMessage({ content: a.content, tool_calls: a.call ? [{ id: a.call.id, name: a.call.name, args: a.call.args, type: 'tool_call' }] : [] }),
        ],
      };
    })
    .addNode('tools', async (s: M) => {
      const last = s.messages.at(-1) as AIMessage;
      const out: ToolMessage[] = [];
      for (const c of last.tool_calls ?? [])
        out.push(new ToolMessage({ tool_call_id: c.id!, name: c.name, content: JSON.stringify(await readPage((c.args as { page: number }).page)) }));
      return { messages: out };
    })
    .addEdge(START, 'model')
    .addConditionalEdges('model', (s: M) => ((s.messages.at(-1) as AIMessage).tool_calls?.length ? 'tools' : END))
    .addEdge('tools', 'model')
    .compile({ checkpointer: saver });
}

/** Every turn is two supersteps (model, tools), plus the final answer. */
const conversationLimit = (turns: number) => 2 * turns + 10;
const finalAnswer = (turns: number) => standinAnswer(turns, turns, false).content;

let seq = 0;
const threadId = (what: string) => `${what}-${process.pid}-${++seq}`;

export async function openLangGraph(o: OpenOptions): Promise<BenchSystem> {
  if (!o.dbUrl) throw new Error('LangGraph needs a Postgres database');
  const saver = PostgresSaver.fromConnString(o.dbUrl);
  await saver.setup();
  const pipe = pipeline(saver);
  const crash = pipeline(saver, 3);
  const fan = fanout(saver);
  const loops = new Map<number, ReturnType<typeof loop>>();
  const loopOf = (steps: number) => loops.get(steps) ?? loops.set(steps, loop(saver, steps)).get(steps)!;
  const loopSteps = new Map<string, number>();
  const talks = new Map<number, ReturnType<typeof conversation>>();
  const talkOf = (turns: number) => talks.get(turns) ?? talks.set(turns, conversation(saver, turns)).get(turns)!;
  const opening = (turns: number) => ({ messages: [new SystemMessage(W6_SYSTEM), new HumanMessage(w6User(turns))] });
  return {
    usesServer: true,
    async pipeline() {
      const out = await pipe.invoke({ step: 0, last: '' }, { configurable: { thread_id: threadId('p') }, durability: 'sync' });
      if (out.step !== PIPELINE_STEPS) throw new Error(`pipeline ended at step ${out.step}`);
    },
    async fanout() {
      const out = await fan.invoke({}, { configurable: { thread_id: threadId('f') }, durability: 'sync' });
      if (out.joined !== FANOUT_BRANCHES) throw new Error(`fan-out joined ${out.joined}`);
    },
    async loop(steps) {
      const id = threadId(`l${steps}`);
      const out = await loopOf(steps).invoke({ step: 0, last: '' }, { configurable: { thread_id: id }, durability: 'sync', recursionLimit: steps + 10 });
      if (out.step !== steps) throw new Error(`loop ended at step ${out.step}`);
      loopSteps.set(id, steps);
      return id;
    },
    async replayLast(id) {
      const steps = loopSteps.get(id)!;
      // Time travel: the checkpoint before the last step, invoked with no input, re-runs that step (a fork).
      const history: string[] = [];
      for await (const t of saver.list({ configurable: { thread_id: id } }, { limit: 2 })) history.push(t.config.configurable!.checkpoint_id as string);
      const out = await loopOf(steps).invoke(null, {
        configurable: { thread_id: id, checkpoint_id: history[1] },
        durability: 'sync',
        recursionLimit: steps + 10,
      });
      if (out.step !== steps) throw new Error(`replay ended at step ${out.step}`);
    },
    async startHanging(i) {
      const id = `crash-${i}`;
      void crash.invoke({ step: 0, last: '' }, { configurable: { thread_id: id }, durability: 'sync' }).catch(() => undefined);
      return id;
    },
    async resumeAll(ids) {
      // LangGraph does not resume anything by itself: the application re-invokes each thread it
      // knows was in flight with no input, which continues from the thread's last checkpoint.
      const ends = await Promise.allSettled(ids.map((id) => crash.invoke(null, { configurable: { thread_id: id }, durability: 'sync' })));
      const failed = ends.filter((r) => r.status === 'rejected' || r.value.step !== PIPELINE_STEPS);
      if (failed[0]) console.error(`[langgraph] ${failed.length} resumed threads did not finish, e.g.`, failed[0]);
      return failed.length;
    },
    async conversation(turns) {
      const id = threadId(`c${turns}`);
      const out = await talkOf(turns).invoke(opening(turns), { configurable: { thread_id: id }, durability: 'sync', recursionLimit: conversationLimit(turns) });
      if (out.messages.at(-1)?.content !== finalAnswer(turns)) throw new Error(`conversation ${id} ended without the final answer`);
      return id;
    },
    async startConversation(turns) {
      const id = `w6-crash-${turns}`;
      void talkOf(turns)
        .invoke(opening(turns), { configurable: { thread_id: id }, durability: 'sync', recursionLimit: conversationLimit(turns) })
        .catch(() => undefined);
      return id;
    },
    async resumeConversation(id, turns) {
      // As in W5: the application re-invokes the thread it knows was in flight, with no input.
      const out = await talkOf(turns).invoke(null, { configurable: { thread_id: id }, durability: 'sync', recursionLimit: conversationLimit(turns) });
      return out.messages.at(-1)?.content === finalAnswer(turns);
    },
    close: () => saver.end(),
  };
}
