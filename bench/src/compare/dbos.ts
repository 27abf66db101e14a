import { DBOS } from '@dbos-inc/dbos-sdk';
import { readPage, standinAnswer, W6_SYSTEM, W6_TOOL, w6User } from './conversation.js';
import { fakeLlm, hangTool, noopTool } from './standin.js';
import { FANOUT_BRANCHES, PIPELINE_STEPS } from './system.js';
import type { BenchSystem, OpenOptions } from './system.js';

/**
 * DBOS Transact as its users write it: registered workflow functions whose LLM call and tool call
 * are each a `DBOS.runStep` (each recorded in the system database, so neither is repeated after a
 * crash: the guarantee ours gives). The fan-out runs 16 steps concurrently in the workflow (one
 * step per branch: the LLM stand-in and the tool, so the order of step ids stays deterministic)
 * and a join step.
 */
async function node(i: number, last: string, tool: () => Promise<unknown>): Promise<string> {
  const text = await DBOS.runStep(() => fakeLlm(`step ${i} after ${last}`), { name: 'llm' });
  await DBOS.runStep(tool, { name: 'tool' });
  return text;
}

const pipeline = DBOS.registerWorkflow(
  async (steps: number): Promise<number> => {
    let last = '';
    for (let i = 1; i <= steps; i++) last = await node(i, last, () => noopTool({}));
    return steps;
  },
  { name: 'pipeline' },
);

const crash = DBOS.registerWorkflow(
  async (): Promise<number> => {
    let last = '';
    for (let i = 1; i <= PIPELINE_STEPS; i++) last = await node(i, last, i === 3 ? hangTool : () => noopTool({}));
    return PIPELINE_STEPS;
  },
  { name: 'crash' },
);

const fanout = DBOS.registerWorkflow(
  async (): Promise<number> => {
    const results = await Promise.all(
      Array.from({ length: FANOUT_BRANCHES }, (_, i) =>
        DBOS.runStep(
          async () => {
            const text = await fakeLlm(`branch ${i}`);
            await noopTool({});
            return text;
          },
          { name: 'branch' },
        ),
      ),
    );
    return DBOS.runStep(async () => results.length, { name: 'join' });
  },
  { name: 'fanout' },
);

type Message =
  | { role: 'system' | 'user'; content: string }
  | { role: 'assistant'; content: string; toolCalls: { id: string; name: string; arguments: { page: number } }[] }
  | { role: 'tool'; toolCallId: string; name: string; content: string };

/**
 * W6: the agent loop as a DBOS workflow. The history is the workflow's own state (a local array,
 * rebuilt on recovery from the recorded step outputs); each model call and each tool call is a
 * step that returns the new message, so the system database records each message once. The
 * model step answers from the whole history (the stand-in of `conversation.ts`), which, being
 * the step's input and not its output, DBOS does not record.
 */
const conversation = DBOS.registerWorkflow(
  async (turns: number): Promise<string> => {
    const history: Message[] = [
      { role: 'system', content: W6_SYSTEM },
      { role: 'user', content: w6User(turns) },
    ];
    for (;;) {
      const answer = await DBOS.runStep(
        async (): Promise<Message> => {
          const a = standinAnswer(history.filter((m) => m.role === 'tool').length, turns, true);
          return { role: 'assistant', content: a.content, toolCalls: a.call ? [{ id: a.call.id, name: a.call.name, arguments: a.call.args }] : [] };
        },
        { name: 'model' },
      );
      history.push(answer);
      if (answer.role !== 'assistant' || !answer.toolCalls.length) return answer.content;
      for (const call of answer.toolCalls) {
        history.push(
          await DBOS.runStep(
            async (): Promise<Message> => ({ role: 'tool', toolCallId: call.id, name: W6_TOOL, content: JSON.stringify(await readPage(call.arguments.page)) }),
            { name: 'tool' },
          ),
        );
      }
    }
  },
  { name: 'conversation' },
);

export async function openDbos(o: OpenOptions): Promise<BenchSystem> {
  if (!o.dbUrl) throw new Error('DBOS needs a Postgres system database');
  DBOS.setConfig({ name: 'ao-bench', systemDatabaseUrl: o.dbUrl, applicationVersion: 'bench', logLevel: 'error' });
  await DBOS.launch();
  return {
    usesServer: true,
    async pipeline() {
      if ((await pipeline(PIPELINE_STEPS)) !== PIPELINE_STEPS) throw new Error('pipeline');
    },
    async fanout() {
      const n = await fanout();
      if (n !== FANOUT_BRANCHES) throw new Error(`fan-out joined ${n}`);
    },
    async loop(steps) {
      const h = await DBOS.startWorkflow(pipeline)(steps);
      if ((await h.getResult()) !== steps) throw new Error('loop');
      return h.workflowID;
    },
    async replayLast(id) {
      // Fork from the last node's first step: DBOS re-runs the workflow function from the top,
      // serving the recorded outputs of the steps before it, and executes the rest.
      const steps = (await DBOS.listWorkflowSteps(id)) ?? [];
      const from = steps[steps.length - 2]!.functionID;
      const h = await DBOS.forkWorkflow<number>(id, from);
      await h.getResult();
    },
    async startHanging(i) {
      const id = `crash-${i}`;
      await DBOS.startWorkflow(crash, { workflowID: id })();
      return id;
    },
    async resumeAll(ids) {
      // Recovery is automatic: `DBOS.launch()` re-ran this executor's pending workflows.
      const ends = await Promise.allSettled(ids.map((id) => DBOS.retrieveWorkflow<number>(id).getResult()));
      const failed = ends.filter((r) => r.status === 'rejected' || r.value !== PIPELINE_STEPS);
      if (failed[0]) console.error(`[dbos] ${failed.length} resumed workflows did not finish, e.g.`, failed[0]);
      return failed.length;
    },
    async conversation(turns) {
      const h = await DBOS.startWorkflow(conversation)(turns);
      if ((await h.getResult()) !== standinAnswer(turns, turns, false).content) throw new Error('conversation ended without the final answer');
      return h.workflowID;
    },
    async startConversation(turns) {
      const id = `w6-crash-${turns}`;
      await DBOS.startWorkflow(conversation, { workflowID: id })(turns);
      return id;
    },
    async resumeConversation(id, turns) {
      // Recovery is automatic: `DBOS.launch()` re-ran the pending workflow, its recorded steps served from the database.
      return (await DBOS.retrieveWorkflow<string>(id).getResult()) === standinAnswer(turns, turns, false).content;
    },
    close: () => DBOS.shutdown(),
  };
}
