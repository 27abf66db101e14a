import { z } from 'zod';
import { zodIssuePath } from '@ao/graphs';
import type { NodeDef, NodeOutput } from '@ao/graphs';
import { actorPath, addUsage, typed } from '@ao/runtime';
import type { ActorPath, EnvelopeType, Payload, ToolSpec } from '@ao/runtime';
import { Effects, errorInfo } from '../effects/effects.js';
import type { ToolOutcome } from '../effects/effects.js';
import type { NodeContext } from '../messages.js';
import { draft } from '../services.js';
import type { RunServices } from '../services.js';

/**
 * A tool the agent loop answers itself, not the tool registry: a supervisor's `route` and
 * `delegate`. Its outcome is computed from recorded effects only, so it replays identically.
 */
export interface ControlTool {
  readonly spec: ToolSpec;
  run(args: Record<string, unknown>, signal: AbortSignal): Promise<ToolOutcome>;
}

/** Runs one child agent: the agent loop with its own node definition, context and effects. */
export type ChildRunner = (a: { node: NodeDef<unknown>; context: NodeContext; effects: Effects; signal: AbortSignal }) => Promise<NodeOutput>;

export interface SupervisorScope {
  readonly s: RunServices;
  readonly node: NodeDef<unknown>;
  readonly context: NodeContext;
  /** The supervisor's actor path: child agents live under it. */
  readonly path: ActorPath;
  /** The start message of this execution: the cause of the child agents' envelopes. */
  readonly causationId: string;
  /** The supervisor's own effects: children's usage is added to it. */
  readonly effects: Effects;
}

/** Bounded error text for the model: enough to fix its call, never a wall of text. */
const MAX_ERROR_CHARS = 1000;
const bounded = (s: string) => (s.length > MAX_ERROR_CHARS ? `${s.slice(0, MAX_ERROR_CHARS)}…` : s);

function invalid(code: 'AO_SUPERVISOR_ROUTE_INVALID' | 'AO_TOOL_ARGS_INVALID', tool: string, e: z.ZodError, hint: string): ToolOutcome {
  const issues = e.issues.map((i) => `${zodIssuePath(i) ?? '(root)'}: ${i.message}`).join('; ');
  return { ok: false, error: { code, message: bounded(`invalid arguments for ${tool}: ${issues}. ${hint}`) } };
}

/** The forward successors of a node in the graph (loop edges are decided by their own `when`). */
export function successorsOf(s: RunServices, node: string): string[] {
  return [...new Set(s.def.edges.filter((e) => e.from === node && !e.back).map((e) => e.to))];
}

/**
 * `route`: the model names the successor(s) that run next. Validated against the graph: a name
 * that is not a successor comes back to the model as AO_SUPERVISOR_ROUTE_INVALID, and it may try
 * again. The latest valid choice is the node's `route` output.
 */
export function routeControl(scope: SupervisorScope, chosen: { route?: string[] }): ControlTool {
  const successors = successorsOf(scope.s, scope.node.id);
  const described = successors.map((id) => {
    const n = scope.s.def.node(id);
    return `${id}${n?.instructions ? ` (${n.instructions.slice(0, 120)})` : ''}`;
  });
  const one = z.enum(successors as [string, ...string[]]);
  const schema = z.object({ next: z.union([z.array(one).min(1), one.transform((x) => [x])]), reason: z.string().optional() });
  return {
    spec: {
      name: 'route',
      description: `Choose which node(s) of the workflow run after you. Choose one or more of: ${described.join('; ')}.`,
      parameters: {
        type: 'object',
        properties: {
          next: { type: 'array', items: { type: 'string', enum: successors }, minItems: 1, maxItems: successors.length, description: 'The nodes to run next.' },
          reason: { type: 'string', description: 'Why, in one sentence.' },
        },
        required: ['next'],
      },
    },
    async run(args) {
      const r = schema.safeParse(args);
      if (!r.success) return invalid('AO_SUPERVISOR_ROUTE_INVALID', 'route', r.error, `Choose among: ${successors.join(', ')}.`);
      chosen.route = [...new Set(r.data.next)];
      return { ok: true, result: { next: chosen.route } };
    },
  };
}

/**
 * `delegate`: the model plans sub-tasks; each runs as a child agent at `<supervisor>/task-k` (its
 * own actor path and effect keys, so a crash or replay reads its recorded calls back) with the
 * supervisor's tools, all in parallel. A `task.started` and a `task.completed` or `task.failed`
 * envelope frame each one. A failed child is reported to the model, not thrown.
 */
export function delegateControl(scope: SupervisorScope, runChild: ChildRunner): ControlTool {
  const max = scope.node.delegate ?? 1;
  const schema = z.object({
    tasks: z
      .array(z.object({ task: z.string().min(1).max(4000) }))
      .min(1)
      .max(max),
  });
  let next = 0;
  const { s, node, path, causationId } = scope;
  const emit = <T extends EnvelopeType>(from: ActorPath, to: ActorPath, type: T, payload: Payload<T>, key: string) =>
    s.journal.append([draft(s, { from, to, ...typed(type, payload), causationId, key })]);
  return {
    spec: {
      name: 'delegate',
      description: `Hand sub-tasks to helper agents that work on them in parallel (at most ${max} per call) and get their answers back. Each task must stand on its own: say exactly what to find or produce.`,
      parameters: {
        type: 'object',
        properties: {
          tasks: {
            type: 'array',
            minItems: 1,
            maxItems: max,
            items: { type: 'object', properties: { task: { type: 'string', description: 'What the helper should do.' } }, required: ['task'] },
          },
        },
        required: ['tasks'],
      },
    },
    async run(args, signal) {
      const r = schema.safeParse(args);
      if (!r.success) return invalid('AO_TOOL_ARGS_INVALID', 'delegate', r.error, `Give 1 to ${max} tasks as [{"task": "..."}].`);
      const runs = r.data.tasks.map(async ({ task }) => {
        const k = ++next;
        const child = actorPath(...path.split('/'), `task-${k}`);
        await emit(path, child, 'task.started', { node: node.id, task: k, text: task }, `${child}/start`);
        const effects = new Effects(s, child, causationId, node.id);
        const { route: _route, delegate: _delegate, ...rest } = node;
        const childNode: NodeDef<unknown> = {
          ...rest,
          agent: 'pipeline',
          instructions: `${task}\n\nYou are a helper agent of the supervisor "${node.id}": do this task and answer with the result.`,
        };
        try {
          const output = await runChild({ node: childNode, context: scope.context, effects, signal });
          await emit(child, path, 'task.completed', { node: node.id, task: k, output, usage: effects.usage }, `${child}/done`);
          return { task, answer: output.text };
        } catch (e) {
          if (signal.aborted) throw e; // the supervisor itself is stopping
          const error = errorInfo(e);
          await emit(child, path, 'task.failed', { node: node.id, task: k, error, usage: effects.usage }, `${child}/done`);
          return { task, error: { code: error.code, message: bounded(error.message) } };
        } finally {
          scope.effects.usage = addUsage(scope.effects.usage, effects.usage);
        }
      });
      return { ok: true, result: { results: await Promise.all(runs) } };
    },
  };
}

/**
 * `ask_human`: offered to nodes with `interrupt`. The model asks a person a question; the run
 * waits (passivated) until the answer comes (POST /runs/:id/signal) and the answer is the tool's
 * result. A timeout with `continue` tells the model nobody answered.
 */
export function askHumanControl(scope: Pick<SupervisorScope, 'node' | 'effects'>): ControlTool {
  const opts = scope.node.interrupt;
  const schema = z.object({ question: z.string().min(1).max(10_000), details: z.record(z.string(), z.unknown()).optional() });
  return {
    spec: {
      name: 'ask_human',
      description: `Ask a person and wait for the answer (it may take hours). ${opts?.prompt ?? 'Ask when you need a decision or information only a person can give.'}`,
      parameters: {
        type: 'object',
        properties: {
          question: { type: 'string', description: 'The question, complete and self-contained.' },
          details: { type: 'object', description: 'Facts the person needs to answer (amounts, ids, options).' },
        },
        required: ['question'],
      },
    },
    async run(args, signal) {
      const r = schema.safeParse(args);
      if (!r.success) return invalid('AO_TOOL_ARGS_INVALID', 'ask_human', r.error, 'Give {"question": "..."}.');
      const res = await scope.effects.interrupt({ prompt: r.data.question, ...(r.data.details ? { payload: r.data.details } : {}) }, signal);
      if (res.outcome.kind === 'signal') return { ok: true, result: res.outcome.payload };
      return { ok: false, error: { code: 'AO_WAIT_TIMED_OUT', message: 'nobody answered in time; go on without the answer' } };
    },
  };
}
