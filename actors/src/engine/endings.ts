import { AoError } from '@ao/graphs';
import { emitRunSpan, isoNow, meters, RunJournal, runTraceContext, TERMINAL_STATUSES } from '@ao/runtime';
import type { ErrorInfo, RunPatch, RunRecord, Typed } from '@ao/runtime';
import { SUPERVISOR_PATH } from '../run-supervisor/run-supervisor.js';
import { draft } from '../services.js';
import type { EngineContext } from './context.js';

/** Close a run that is not hosted here with a final status (no actor runs it), with its root span. */
export async function endUnhosted(ctx: EngineContext, run: RunRecord, status: 'cancelled' | 'failed', error: ErrorInfo): Promise<void> {
  await writeUnhosted(ctx, run, { type: 'run.finished', payload: { status, error, usage: run.usage } }, 'run.finished', {
    status,
    error,
    finishedAt: isoNow(ctx.clock),
    waits: [],
    wakeAt: null,
  });
  emitRunSpan({
    trace: (await ctx.store.listEvents(run.id, { limit: 1 }))[0]?.trace ?? runTraceContext(run.id, run.traceId),
    startTime: Date.parse(run.startedAt ?? run.createdAt),
    attributes: {
      'ao.run.id': run.id,
      'ao.graph': run.graph,
      'ao.graph.version': run.graphVersion,
      'ao.run.status': status,
      ...(run.replay ? { replay: true } : {}),
    },
    error,
  });
  meters().runsFinished.add(1, { 'ao.graph': run.graph, status, ...(run.replay ? { replay: true } : {}) });
}

/** Stop a run for a person to decide (status `waiting`, with the reason), releasing its lease. */
export function park(ctx: EngineContext, run: RunRecord, error: ErrorInfo): Promise<void> {
  return writeUnhosted(ctx, run, { type: 'run.parked', payload: { error } }, `parked/${error.code}/${run.lastSeq}`, { status: 'waiting', error });
}

/** One last event of a run no actor hosts, with the run row's new state, and its lease given up. */
async function writeUnhosted(ctx: EngineContext, run: RunRecord, body: Typed<'run.finished' | 'run.parked'>, key: string, patch: RunPatch): Promise<void> {
  const journal = new RunJournal(ctx.store, ctx.bus, run.id, run.lastSeq);
  await journal.append([draft({ runId: run.id, trace: null }, { from: SUPERVISOR_PATH, to: SUPERVISOR_PATH, ...body, causationId: null, key })], {
    patch: { ...patch, releaseLease: true },
  });
  await journal.flush(); // published before anyone may write after it
}

/**
 * Cancel a run: the hosting node stops its actor tree (in-flight calls are aborted) and ends it
 * `cancelled`. Any node may take the request; the host sees the flag when it renews its lease.
 */
export async function cancelRun(ctx: EngineContext, id: string, reason: string): Promise<RunRecord> {
  const run = await ctx.store.getRun(id);
  if (!run) throw new AoError('AO_RUN_NOT_FOUND', `no run ${id}`, { field: 'id' });
  if (TERMINAL_STATUSES.has(run.status)) throw new AoError('AO_RUN_NOT_ACTIVE', `run ${id} already ended ${run.status}`, { field: 'id' });
  const host = ctx.hosts.get(id);
  if (host) {
    host.cancel(reason);
    await host.done;
  } else if (run.status === 'waiting' && !run.owner) {
    await endUnhosted(ctx, run, 'cancelled', { code: 'AO_RUN_CANCELLED', message: reason });
  } else {
    await ctx.store.requestCancel(id);
  }
  return (await ctx.store.getRun(id))!;
}
