import { AoError } from '@ao/graphs';
import type { ListRunsQuery, Store } from './port.js';
import type { RunRecord } from './records.js';

/** The fewest characters of a run id that address it (`ao show 3f2a9c1e`, `/runs/3f2a9c1e`). */
export const RUN_ID_PREFIX_MIN = 8;
/** How many runs an ambiguous prefix names in its error, at most. */
export const AMBIGUOUS_CANDIDATES = 10;
/** What an id prefix may hold: run ids are uuids (hex digits and dashes). */
export const RUN_ID_PREFIX = /^[0-9a-fA-F-]{1,36}$/;

/**
 * The run a reference names: its full id, or a unique prefix of at least
 * {@link RUN_ID_PREFIX_MIN} characters of one (any case). Undefined when nothing matches (or the
 * run is another tenant's: `tenant` scopes the prefix search, and the caller checks an exact hit).
 * @throws AoError `AO_VALIDATION` for a prefix shorter than 8 characters that is no run's id;
 *   `AO_RUN_ID_AMBIGUOUS` when several runs start with it (`details.candidates`: their ids).
 * @example
 * const run = await resolveRunRef(store, '3f2a9c1e', { tenant: 'default' });
 */
export async function resolveRunRef(
  store: Pick<Store, 'getRun' | 'listRuns'>,
  ref: string,
  o: { tenant?: string; field?: string } = {},
): Promise<RunRecord | undefined> {
  const field = o.field ?? 'id';
  const exact = await store.getRun(ref);
  if (exact) return exact;
  // Not id-shaped (`nope`): no run by that name, whatever its length.
  if (!RUN_ID_PREFIX.test(ref)) return undefined;
  if (ref.length < RUN_ID_PREFIX_MIN) {
    throw new AoError('AO_VALIDATION', `run id prefix ${JSON.stringify(ref)} is too short: give at least ${RUN_ID_PREFIX_MIN} characters of the id`, { field });
  }
  const q: ListRunsQuery = { idPrefix: ref.toLowerCase(), limit: AMBIGUOUS_CANDIDATES, ...(o.tenant !== undefined ? { tenant: o.tenant } : {}) };
  const { runs, next } = await store.listRuns(q);
  if (runs.length <= 1) return runs[0];
  const candidates = runs.map((r) => r.id);
  const more = next ? ', and more' : '';
  throw new AoError(
    'AO_RUN_ID_AMBIGUOUS',
    `run id prefix ${JSON.stringify(ref)} matches ${runs.length}${next ? '+' : ''} runs: ${candidates.join(', ')}${more}; give more characters`,
    {
      field,
      details: { prefix: ref, candidates },
    },
  );
}
