import { AoError } from '@ao/graphs';
import type { Envelope } from '../envelope/mod.js';

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
