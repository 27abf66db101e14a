export type { ActorContext, ActorRef, ActorSystem, Behaviour } from './actor-system.js';
export { createActorSystem } from './actor-system.js';
