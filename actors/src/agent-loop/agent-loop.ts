import { AoError } from '@ao/graphs';
import type { NodeDef, NodeOutput, RunContext } from '@ao/graphs';
import { redactArgs, TOOL_MESSAGE_MAX_CHARS, toolMessageContent, toolSecrets } from '@ao/runtime';
import type { ActorPath, ChatMessage, ToolCall, ToolRegistry } from '@ao/runtime';
import type { Effects, ToolOutcome } from '../effects/effects.js';
import type { NodeContext } from '../messages.js';
import type { RunServices } from '../services.js';
import { askHumanControl, delegateControl, routeControl } from '../supervisor/controls.js';
import type { ControlTool } from '../supervisor/controls.js';
import { buildPrompt } from './prompt.js';

/**
 * A plain loop leaves a resume point in its model request's turn record every this many turns
 * (turns 9, 17, 25, ...): a restart restores its conversation there and runs fewer than this many
 * turns again from the log, instead of every turn since the start (issue 22). Each point holds
 * the actor's counters and the run's budget ledger, about 450 bytes.
 */
export const RESUME_EVERY = 8;

export interface AgentRun {
  node: NodeDef<unknown>;
  context: NodeContext;
  branch?: { index: number; of: number };
  effects: Effects;
  tools: ToolRegistry;
  signal: AbortSignal;
  /**
   * What a supervisor node with `route` or `delegate` needs besides: the run's services, its
   * actor path (child agents live under it) and its start message's id. Without it, a
   * supervisor runs the plain loop.
   */
  scope?: { services: RunServices; path: ActorPath; causationId: string };
}

/** Malformed arguments are quoted back to the model up to this many characters. */
const MAX_QUOTED_ARGS = 300;

/** A call whose arguments were not a JSON object: the model hears why, the tool is not called. */
function malformedOutcome(call: ToolCall): ToolOutcome {
  const raw = call.malformed ?? '';
  const quoted = raw.length > MAX_QUOTED_ARGS ? `${raw.slice(0, MAX_QUOTED_ARGS)}…` : raw;
  return {
    ok: false,
    error: {
      code: 'AO_TOOL_ARGS_INVALID',
      message: `the arguments of ${call.name} are not a JSON object (${quoted}); call it again with a JSON object that fits its schema`,
    },
  };
}

/**
 * A tool result fed back to the model: canonical JSON (keys sorted: the same result reads the same
 * whether it came from the tool or from the log), cut to TOOL_MESSAGE_MAX_CHARS characters. The
 * store makes the same text from a turn record's tool call (so it keeps the result once).
 */
const render = (o: ToolOutcome): string => toolMessageContent(o, TOOL_MESSAGE_MAX_CHARS);

/** Arguments as a node's output records them: secret ones redacted, as in the `tool.call` event. */
const shownArgs = (tools: ToolRegistry, name: string, args: unknown) => redactArgs(toolSecrets(tools.get(name)), args);

/**
 * The agent loop of one node (or swarm branch): offer the model the node's tools, run the tool
 * calls it makes (validated; a bad call, including arguments that are not JSON, comes back to the
 * model as an error result, never a crash), feed the results back, and stop at a final answer or
 * after `maxTurns` model calls. A supervisor with `route` or `delegate` is also offered those
 * control tools (see `supervisor/controls.ts`).
 * A node with `args(ctx)` calls its tools with those arguments first, then asks the model once.
 */
export async function runAgent(a: AgentRun): Promise<NodeOutput> {
  const { node, effects, signal } = a;
  const messages: ChatMessage[] = buildPrompt(node, a.context, a.branch);
  const used: NonNullable<NodeOutput['tools']> = [];
  const chosen: { route?: string[] } = {};

  if (node.args) {
    let mapped: Record<string, unknown>;
    try {
      mapped = node.args(a.context as RunContext) ?? {};
    } catch (e) {
      throw new AoError('AO_EDGE_PREDICATE_FAILED', `args() of node "${node.id}" threw: ${(e as Error).message}`, { cause: e });
    }
    for (const name of node.tools) {
      if (!(name in mapped)) continue;
      const outcome = await effects.tool(node.id, name, mapped[name], signal);
      used.push({ name, args: shownArgs(a.tools, name, mapped[name]), ok: outcome.ok, result: outcome.ok ? outcome.result : outcome.error });
      messages.push({ role: 'user', content: `Result of ${name}: ${render(outcome)}` });
    }
    const res = await effects.llm({ profile: node.llm, messages, maxTokens: node.maxTokens }, signal);
    return { text: res.message.content, ...(used.length ? { tools: used } : {}) };
  }

  const controls = controlsOf(a);
  const specs = [...a.tools.specs(node.tools), ...controls.map((c) => c.spec)];
  let text = '';
  // A plain loop (no control tools, whose state lives outside it) keeps its conversation in its
  // requests' turn records, with a resume point every RESUME_EVERY turns; restored from one, it
  // goes on from there.
  const recorded = controls.length === 0;
  const restored = recorded ? effects.restore() : undefined;
  if (restored) {
    messages.splice(0, messages.length, ...(restored.messages as ChatMessage[]));
    used.push(...(restored.used as typeof used));
    const answer = messages.findLast((m) => m.role === 'assistant');
    if (answer) text = answer.content;
  }
  /** The tool calls already in a turn record. */
  let kept = used.length;
  for (let turn = restored?.state.turn ?? 1; turn <= node.maxTurns; turn++) {
    // On the last turn no tools are offered, so the model must answer.
    const offer = turn < node.maxTurns && specs.length ? specs : undefined;
    const record = recorded ? { used: used.slice(kept), ...(turn > 1 && (turn - 1) % RESUME_EVERY === 0 ? { resume: turn } : {}) } : undefined;
    kept = used.length;
    const res = await effects.llm({ profile: node.llm, messages, maxTokens: node.maxTokens, ...(offer ? { tools: offer } : {}) }, signal, record);
    text = res.message.content;
    const calls = res.message.toolCalls;
    if (!calls.length) break;
    messages.push({ role: 'assistant', content: res.message.content, toolCalls: calls });
    for (const call of calls) {
      const control = controls.find((c) => c.spec.name === call.name);
      const outcome: ToolOutcome =
        call.malformed !== undefined
          ? malformedOutcome(call)
          : control
            ? await control.run(call.arguments, signal)
            : node.tools.includes(call.name)
              ? await effects.tool(node.id, call.name, call.arguments, signal)
              : {
                  ok: false,
                  error: {
                    code: 'AO_TOOL_NOT_ALLOWED',
                    message: `node "${node.id}" may not call tool "${call.name}"; it may call: ${[...node.tools, ...controls.map((c) => c.spec.name)].join(', ') || 'none'}`,
                  },
                };
      used.push({
        name: call.name,
        args: call.malformed ?? shownArgs(a.tools, call.name, call.arguments),
        ok: outcome.ok,
        result: outcome.ok ? outcome.result : outcome.error,
      });
      messages.push({ role: 'tool', toolCallId: call.id, name: call.name, content: render(outcome) });
    }
  }
  return { text, ...(used.length ? { tools: used } : {}), ...(chosen.route ? { route: chosen.route } : {}) };

  function controlsOf(r: AgentRun): ControlTool[] {
    const sc = r.scope;
    if (!sc) return [];
    const scope = { s: sc.services, node: r.node, context: r.context, path: sc.path, causationId: sc.causationId, effects: r.effects };
    const supervisor = r.node.agent === 'supervisor';
    return [
      ...(r.node.interrupt ? [askHumanControl(scope)] : []),
      ...(supervisor && r.node.route ? [routeControl(scope, chosen)] : []),
      ...(supervisor && r.node.delegate ? [delegateControl(scope, (c) => runAgent({ ...c, tools: r.tools }))] : []),
    ];
  }
}
