import { AoError } from '@ao/graphs';
import { CIRCUMSTANTIAL_TYPES, emitterOf, envelopeIdFor } from '@ao/runtime';
import type { Envelope, RunFile } from '@ao/runtime';

/**
 * A run under a new id (`ao import FILE --as NEW_ID`). A run's envelope ids derive from its id and
 * each envelope's dedupe key (`envelopeIdFor`), and a recorded replay finds the original's
 * envelopes by computing their ids, so a renamed copy needs the ids its new id gives: the keys are
 * not stored, so they are made again, by a recorded replay of the run under the new id (see
 * `Verifier.rename`), whose envelopes are the original's one for one, actor by actor, in order.
 * Everything that names an old id is rewritten with the same map: envelope ids, causation ids,
 * ids and the run id inside payloads (a checkpoint's live children's start ids, a tool's
 * idempotency key) and checkpoint states.
 */

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;

/**
 * Old envelope id -> new: the original's decisions and the replay's (made under the new id), paired
 * per emitting actor in order. Envelopes a replay does not make (a model call's throttling) get an
 * id of their own under the new run id.
 */
export function renamedIds(original: readonly Envelope[], replay: readonly Envelope[], newId: string): Map<string, string> {
  const mine = new Map<string, Envelope[]>();
  for (const e of replay) {
    if (e.type === 'run.replayed' || e.type === 'replay.diverged') continue;
    const k = emitterOf(e);
    const list = mine.get(k);
    if (list) list.push(e);
    else mine.set(k, [e]);
  }
  const taken = new Map<string, number>();
  const ids = new Map<string, string>();
  for (const e of original) {
    if (CIRCUMSTANTIAL_TYPES.has(e.type)) {
      ids.set(e.id, envelopeIdFor(newId, `imported/${e.id}`));
      continue;
    }
    const k = emitterOf(e);
    const i = taken.get(k) ?? 0;
    const twin = mine.get(k)?.[i];
    if (!twin || twin.type !== e.type) {
      throw new AoError(
        'AO_REPLAY_DIVERGED',
        `cannot rename run ${e.runId}: its replay under the new id did not make envelope ${e.seq} (${e.type} of ${k}) again`,
        { field: 'as' },
      );
    }
    taken.set(k, i + 1);
    ids.set(e.id, twin.id);
  }
  return ids;
}

/** Rewrite every old id (`ids`) and the old run id in a JSON value (strings and object keys). */
export function rewriteIds<T>(v: T, oldRunId: string, newRunId: string, ids: ReadonlyMap<string, string>): T {
  const str = (s: string): string =>
    s
      .split(oldRunId)
      .join(newRunId)
      .replace(UUID, (m) => ids.get(m) ?? m);
  const walk = (x: unknown): unknown => {
    if (typeof x === 'string') return str(x);
    if (Array.isArray(x)) return x.map(walk);
    if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, y]) => [str(k), walk(y)]));
    return x;
  };
  return walk(v) as T;
}

/** The run file `file` under `newId`, given the old -> new envelope id map. */
export function renamedFile(file: RunFile, newId: string, ids: ReadonlyMap<string, string>): RunFile {
  const old = file.run.id;
  const re = <T>(v: T): T => rewriteIds(v, old, newId, ids);
  return {
    ...file,
    run: { ...file.run, id: newId, output: re(file.run.output), error: re(file.run.error), nodes: re(file.run.nodes) },
    events: file.events.map((e) => ({
      ...e,
      id: ids.get(e.id) ?? envelopeIdFor(newId, `imported/${e.id}`),
      runId: newId,
      causationId: e.causationId === null ? null : (ids.get(e.causationId) ?? e.causationId),
      payload: re(e.payload),
    })),
    checkpoints: file.checkpoints.map((c) => ({ ...c, state: re(c.state) })),
  };
}
