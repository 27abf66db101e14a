import type { FastifyRequest } from 'fastify';
import { AoError } from '@ao/graphs';
import type { RunRecord } from '@ao/runtime';
import { visible } from './guard.js';

/** Ids a run could have: anything else (a NUL, a control character) is not looked up at all. */
export const RUN_ID = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * The run `id` if it exists and the caller's tenant owns it, else 404 AO_RUN_NOT_FOUND: the same
 * answer for a run of another tenant as for no run at all.
 */
export async function ownRun(source: { getRun(id: string): Promise<RunRecord | undefined> }, req: FastifyRequest, id: string, field = 'id'): Promise<RunRecord> {
  const run = RUN_ID.test(id) ? await source.getRun(id) : undefined;
  if (!visible(req, run)) throw new AoError('AO_RUN_NOT_FOUND', `no run ${JSON.stringify(id)}`, { field });
  return run;
}
