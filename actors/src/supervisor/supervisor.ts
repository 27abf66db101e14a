import type { Behaviour } from '@ao/runtime';
import { fromPipeline } from '../pipeline/pipeline.js';
import type { ActorMessage, RunServices } from '../services.js';

/**
 * A `supervisor` node (an agent kind, a sibling of `pipeline/` and `swarm/`; not the run's root
 * actor, which is `../run-supervisor/`): plans and directs the agents after it. It runs the agent loop with the
 * supervisor role prompt; with `route` the model also picks which successors run next, and with
 * `delegate` it may hand sub-tasks to child agents (the control tools of `controls.ts`, which the
 * agent loop offers to supervisor nodes).
 */
export function fromSupervisor(s: RunServices): Behaviour<ActorMessage, null> {
  return fromPipeline(s);
}
