import type { AgentKind } from '@ao/graphs';
import { addUsage, actorPath, emptyUsage } from '@ao/runtime';
import type { ActorContext, ActorRef, Behaviour, EnvelopeDraft, RunPatch, Usage } from '@ao/runtime';
import { parseMessage } from '../messages.js';
import type { Message } from '../messages.js';
import { fromPipeline } from '../pipeline/pipeline.js';
import { fromSupervisor } from '../supervisor/supervisor.js';
import { fromSwarm } from '../swarm/swarm.js';
import { isEnvelope } from '../services.js';
import type { ActorMessage, RunServices } from '../services.js';
import { begin, initialState, nodeFailed, nodeSucceeded, retryDue } from './scheduler.js';
import type { Decision, SchedulerState, Step } from './scheduler.js';

export const SUPERVISOR_PATH = actorPath('supervisor');

interface SupervisorState {
  sched: SchedulerState;
  usage: Usage;
  children: Map<string, ActorRef<ActorMessage>>;
}

const KINDS: Record<AgentKind, (s: RunServices) => Behaviour<ActorMessage, unknown>> = {
  pipeline: fromPipeline,
  supervisor: fromSupervisor,
  swarm: fromSwarm as (s: RunServices) => Behaviour<ActorMessage, unknown>,
};

/**
 * The run supervisor: one per run. It walks the graph (decisions come from the pure functions in
 * scheduler.ts), spawns one child actor per node execution, owns node retries, aggregates usage,
 * and ends the run. Every decision is journaled as envelopes together with the run row's new
 * state in one commit.
 */
export function fromRunSupervisor(s: RunServices): Behaviour<ActorMessage, SupervisorState> {
  const timers = new Set<() => void>();
  return {
    initialState: { sched: initialState(s.def), usage: emptyUsage(), children: new Map() },
    async receive(state, msg, ctx) {
      if (state.sched.finished) return state;
      const now = new Date().toISOString();
      if (!isEnvelope(msg)) return apply(state, retryDue(s.def, state.sched, msg.node, now), ctx, null);
      let m: Message;
      try {
        m = parseMessage(msg);
      } catch (e) {
        console.error(`[supervisor ${s.runId}] dropped invalid envelope ${msg.id}:`, (e as Error).message);
        return state;
      }
      switch (m.type) {
        case 'run.started':
          return apply(state, begin(s.def, state.sched, now), ctx, msg.id);
        case 'node.completed': {
          stopChild(state, m.payload.node);
          state.usage = addUsage(state.usage, m.payload.usage);
          return apply(state, nodeSucceeded(s.def, state.sched, s.input, m.payload.node, m.payload.output, now, m.payload), ctx, msg.id);
        }
        case 'node.failed': {
          stopChild(state, m.payload.node);
          state.usage = addUsage(state.usage, m.payload.usage);
          return apply(state, nodeFailed(s.def, state.sched, m.payload.node, m.payload.error, m.payload.retryable, now, m.payload), ctx, msg.id);
        }
        default:
          return state; // observations (its own notes, effects) are for the log
      }
    },
    onStop() {
      for (const t of timers) t();
    },
  };

  function stopChild(state: SupervisorState, node: string): void {
    const ref = state.children.get(node);
    if (ref) {
      ref.stop();
      state.children.delete(node);
      s.unregister(ref.path);
    }
  }

  async function apply(state: SupervisorState, step: Step, ctx: ActorContext<ActorMessage>, causationId: string | null): Promise<SupervisorState> {
    const next: SupervisorState = { ...state, sched: step.state };
    if (!step.decisions.length && step.state === state.sched) return next;
    const drafts: EnvelopeDraft[] = [];
    const note = (to: string, type: string, payload: unknown): void => {
      drafts.push({ runId: s.runId, from: ctx.path, to: to as EnvelopeDraft['to'], type, payload, causationId, trace: s.trace });
    };
    const patch: RunPatch = { nodes: step.state.nodes, usage: next.usage };
    let finished = false;
    for (const d of step.decisions) {
      switch (d.kind) {
        case 'start': {
          const node = s.def.node(d.node)!;
          const ref = ctx.spawn(d.node, KINDS[node.agent](s));
          s.register(ref);
          next.children.set(d.node, ref);
          const context = {
            input: s.input,
            outputs: step.state.outputs,
            iterations: Object.fromEntries(Object.entries(step.state.nodes).map(([id, n]) => [id, n.iteration])),
            upstream: d.upstream,
          };
          note(ref.path, 'node.start', { node: d.node, iteration: d.iteration, attempt: d.attempt, context });
          break;
        }
        case 'skip':
          note(ctx.path, 'node.skipped', { node: d.node, reason: d.reason });
          break;
        case 'loop':
          note(ctx.path, 'loop.iterated', { from: d.from, to: d.to, iteration: d.iteration, reset: d.reset });
          break;
        case 'retry': {
          note(ctx.path, 'node.retry_scheduled', { node: d.node, attempt: d.attempt, delayMs: d.delayMs, error: d.error });
          const cancel = s.clock.setTimer(d.delayMs, () => {
            timers.delete(cancel);
            ctx.self.tell({ local: 'retry', node: d.node });
          });
          timers.add(cancel);
          break;
        }
        case 'finish': {
          for (const id of d.cancel) stopChild(next, id);
          finished = true;
          const status = d.status;
          note(ctx.path, 'run.finished', { status, ...(d.output ? { output: d.output } : {}), ...(d.error ? { error: d.error } : {}), usage: next.usage });
          Object.assign(patch, { status, output: d.output ?? null, error: d.error ?? null, finishedAt: new Date().toISOString() });
          break;
        }
        default:
          d satisfies never;
      }
    }
    await s.journal.append(drafts, patch);
    if (finished) {
      for (const id of [...next.children.keys()]) stopChild(next, id);
      s.finished();
    }
    return next;
  }
}

export type { Decision };
