import type { AgentKind, NodeDef } from '@ao/graphs';
import { canonicalJson } from '@ao/graphs';
import type { ChatMessage } from '@ao/runtime';
import type { NodeContext } from '../messages.js';

const ROLE: Record<AgentKind, string> = {
  supervisor: 'You are a supervisor agent: plan and direct the work of the agents after you.',
  pipeline: 'You are a pipeline agent: do your step of the work and hand on a clear result.',
  swarm: 'You are one agent of a swarm working in parallel: give your own independent take.',
};

/**
 * The prompt of a node: the system message is its role and instructions; the user message
 * carries the run input and the outputs it builds on. Upstream outputs are cut to keep a prompt
 * bounded however long the run.
 */
export function buildPrompt(node: NodeDef<unknown>, ctx: NodeContext, branch?: { index: number; of: number }): ChatMessage[] {
  const system = [node.instructions ?? '', ROLE[node.agent]].filter(Boolean).join('\n');
  const parts = [`Node: ${node.id} (${node.agent})`, 'Run input:', JSON.stringify(JSON.parse(canonicalJson(ctx.input ?? null)), null, 2), ''];
  if (ctx.upstream.length) {
    parts.push('Upstream outputs:');
    for (const id of ctx.upstream) {
      const text = ctx.outputs[id]?.text ?? '';
      parts.push(`## ${id}`, text.length > 4000 ? `${text.slice(0, 4000)}…` : text);
    }
    parts.push('');
  }
  if (ctx.approval !== undefined) parts.push('A person approved this step:', canonicalJson(ctx.approval), '');
  const iteration = ctx.iterations[node.id] ?? 1;
  if (iteration > 1) parts.push(`Iteration: ${iteration}`);
  if (branch) parts.push(`Branch: ${branch.index} of ${branch.of}`);
  return [
    { role: 'system', content: system },
    { role: 'user', content: parts.join('\n') },
  ];
}
