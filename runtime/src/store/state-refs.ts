import { AoError } from '@ao/graphs';
import type { Envelope } from '../envelope/mod.js';

const MIN_HELD_CHARS = 160;

/**
 * A part of a checkpoint's state held by the run's log instead (issue 22): the value at `field`
 * of the payload of envelope `id`, which belongs at `path` of the state (a node's output, held
 * by its `node.completed`). Listed under the state's `$refs`; the store puts each back when the
 * checkpoint is read, so readers see whole states (and the `$refs` they came from).
 */
export interface StateRef {
  path: string[];
  id: string;
  field: string[];
}

const isRef = (r: unknown): r is StateRef =>
  typeof r === 'object' && r !== null && Array.isArray((r as StateRef).path) && typeof (r as StateRef).id === 'string' && Array.isArray((r as StateRef).field);

/** The references a checkpoint state lists (none for most). */
export function stateRefsOf(state: unknown): StateRef[] {
  const refs = (state as { $refs?: unknown } | null)?.$refs;
  return Array.isArray(refs) ? refs.filter(isRef) : [];
}

/** Put back the parts of `state` its references name, from the envelopes `lookup` finds by id. */
export function putRefs(state: unknown, lookup: (id: string) => Envelope | undefined, where: string): void {
  for (const r of stateRefsOf(state)) {
    const env = lookup(r.id);
    if (!env) throw new AoError('AO_STORE_CORRUPT', `${where} refers to envelope ${r.id}, which the run's log does not hold`);
    let value: unknown = env.payload;
    for (const k of r.field) value = (value as Record<string, unknown> | null)?.[k];
    let at = state as Record<string, unknown>;
    for (const k of r.path.slice(0, -1)) at = (at[k] ??= {}) as Record<string, unknown>;
    at[r.path.at(-1)!] = value;
  }
}

/**
 * A checkpoint state with each node output that the run's last `node.completed` of that node holds
 * (`held` gives its id and the output's JSON, as far as the store knows) moved to its `$refs`. The
 * supervisor refers to its own nodes' outputs already; a replay's cannot tell its own
 * `node.completed` from one inherited from its original, so it writes them whole, and the store
 * refers to those of its own log (issue 22: a replay's checkpoint held the agent's whole output,
 * every tool result of its conversation, again).
 */
export function outputsByRef(state: unknown, held: (node: string) => { id: string; json: string } | undefined): unknown {
  const sched = (state as { sched?: { outputs?: unknown } } | null)?.sched;
  const outputs = sched?.outputs;
  if (typeof outputs !== 'object' || outputs === null || Array.isArray(outputs)) return state;
  const refs: StateRef[] = [];
  const rest: Record<string, unknown> = { ...(outputs as Record<string, unknown>) };
  for (const [node, output] of Object.entries(rest)) {
    const at = held(node);
    // A short output costs less than its reference.
    if (!at || at.json.length < MIN_HELD_CHARS || at.json !== JSON.stringify(output)) continue;
    delete rest[node];
    refs.push({ path: ['sched', 'outputs', node], id: at.id, field: ['output'] });
  }
  if (!refs.length) return state;
  return { ...(state as object), sched: { ...sched, outputs: rest }, $refs: [...stateRefsOf(state), ...refs] };
}
