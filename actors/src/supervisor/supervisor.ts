import type { Behaviour } from '@ao/runtime';
import { fromPipeline } from '../pipeline/pipeline.js';
import type { ActorMessage, RunServices } from '../services.js';

/**
 * A `supervisor` node: plans and directs the agents after it. Here it runs the agent loop with
 * the supervisor role prompt; model-chosen routing among successors comes with real providers.
 */
export function fromSupervisor(s: RunServices): Behaviour<ActorMessage, null> {
  return fromPipeline(s);
}
