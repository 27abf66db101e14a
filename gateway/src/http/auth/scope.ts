import type { FastifyRequest } from 'fastify';
import { AoError } from '@ao/graphs';
import { resolveRunRef } from '@ao/runtime';
import type { RunQueries } from '@ao/actors';
import type { RunRecord } from '@ao/runtime';
import { OPEN_PRINCIPAL } from './authenticator.js';
import { visible } from './guard.js';

/** Ids a run could have: anything else (a NUL, a control character) is not looked up at all. */
export const RUN_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * The run `id` names (its full id, or a unique prefix of at least 8 characters of it) if it exists
 * and the caller's tenant owns it, else 404 AO_RUN_NOT_FOUND: the same answer for a run of another
 * tenant as for no run at all (a prefix is only looked for among the tenant's runs). A shorter
 * prefix is 400 AO_VALIDATION; one that several runs start with, 409 AO_RUN_ID_AMBIGUOUS.
 */
export async function ownRun(source: { queries: Pick<RunQueries, 'getRun' | 'listRuns'> }, req: FastifyRequest, id: string, field = 'id'): Promise<RunRecord> {
  const tenant = (req.principal ?? OPEN_PRINCIPAL).tenant;
  const run = RUN_ID.test(id) ? await resolveRunRef(source.queries, id, { tenant, field }) : undefined;
  if (!visible(req, run)) throw new AoError('AO_RUN_NOT_FOUND', `no run ${JSON.stringify(id)}`, { field });
  return run;
}
