import { z } from 'zod';
import { isoNow } from '../clock/mod.js';
import { AoError, zodIssuePath } from '@ao/graphs';
import { EnvelopeSchema } from '../envelope/mod.js';
import type { Store } from '../store/port.js';
import { RunRecordSchema, RunStatusSchema, TERMINAL_STATUSES } from '../store/records.js';
import type { RunRecord } from '../store/records.js';

/**
 * A run as one file (`ao export`, `ao import`, `ao verify run.json`, recorded fixtures): the graph
 * it ran (name and version), its input, budget, status and output, every envelope of its log (the
 * answers to its waits and the times it read are envelopes: `wait.opened`, `wait.resolved`,
 * `run.waiting`, ...) and, unless left out, its checkpoints (a replay from a step after 0 needs
 * them). Secrets stay what the log holds: handles, never their values (the sealed values stay in
 * the store they were written to). Only finished runs are exported: a file is a record, not a
 * run to resume. Versioned: a reader refuses a format or version it does not know.
 */
export const RUN_FILE_FORMAT = 'ao-run';
export const RUN_FILE_VERSION = 1;

const Time = z.iso.datetime({ offset: true });

const RUN = RunRecordSchema.shape;

export const RunFileRunSchema = z.strictObject({
  id: z.string().min(1).max(128),
  graph: z.string().min(1).max(128),
  graphVersion: z.string().min(1),
  status: RunStatusSchema.refine((s) => TERMINAL_STATUSES.has(s), 'a run file holds a finished run (succeeded, failed, budget_exceeded or cancelled)'),
  // As the store's run record has them (its times are ISO strings of any form; a file's must have an offset).
  input: RUN.input,
  output: RUN.output,
  error: RUN.error,
  budget: RUN.budget,
  usage: RUN.usage,
  nodes: RUN.nodes,
  traceId: RUN.traceId,
  replay: RUN.replay,
  createdAt: Time,
  startedAt: Time.nullable(),
  finishedAt: Time.nullable(),
});

/** The id a run file is imported under (`ao import FILE --as ID`): a lower-case uuid, as run ids are (`uuidgen | tr A-F a-f`). */
export const NewRunIdSchema = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'a run id is a lower-case uuid');

export const RunFileCheckpointSchema = z.strictObject({
  step: z.number().int().min(0),
  seq: z.number().int().min(0),
  node: z.string().nullable(),
  graphVersion: z.string(),
  state: z.unknown(),
  createdAt: Time,
});

export const RunFileSchema = z
  .strictObject({
    format: z.literal(RUN_FILE_FORMAT),
    version: z.literal(RUN_FILE_VERSION),
    exportedAt: Time,
    run: RunFileRunSchema,
    events: z.array(EnvelopeSchema).min(1),
    checkpoints: z.array(RunFileCheckpointSchema),
  })
  .superRefine((f, ctx) => {
    // The log is the run's, whole: seq 1, 2, 3, ... in order (the replay and the verifier rely on it).
    for (const [i, e] of f.events.entries()) {
      if (e.runId !== f.run.id)
        return ctx.addIssue({ code: 'custom', path: ['events', i, 'runId'], message: `envelope of run ${e.runId}, not of run ${f.run.id}` });
      if (e.seq !== i + 1)
        return ctx.addIssue({
          code: 'custom',
          path: ['events', i, 'seq'],
          message: `seq ${e.seq} where ${i + 1} was expected: the log must be whole and in order`,
        });
    }
    const last = f.events.length;
    for (const [i, c] of f.checkpoints.entries()) {
      if (c.seq > last)
        return ctx.addIssue({
          code: 'custom',
          path: ['checkpoints', i, 'seq'],
          message: `checkpoint ${c.step} reflects seq ${c.seq}, past the log's last (${last})`,
        });
    }
  });
export type RunFile = z.infer<typeof RunFileSchema>;

/**
 * A run file from what a file or request body holds (text or parsed JSON): validated, or
 * AO_RUN_FILE_INVALID naming the first field at fault (`where` prefixes it, e.g. a file name).
 */
export function parseRunFile(value: unknown, where?: string): RunFile {
  const at = where ? `${where}: ` : '';
  let json = value;
  if (typeof value === 'string') {
    try {
      json = JSON.parse(value) as unknown;
    } catch (e) {
      throw new AoError('AO_RUN_FILE_INVALID', `${at}not JSON: ${(e as Error).message}`);
    }
  }
  const head = json as { format?: unknown; version?: unknown } | null;
  if (typeof head !== 'object' || head === null || head.format !== RUN_FILE_FORMAT) {
    throw new AoError('AO_RUN_FILE_INVALID', `${at}not a run file (its "format" is not "${RUN_FILE_FORMAT}")`, { field: 'format' });
  }
  if (head.version !== RUN_FILE_VERSION) {
    throw new AoError('AO_RUN_FILE_INVALID', `${at}run file version ${JSON.stringify(head.version)}; this code reads version ${RUN_FILE_VERSION}`, {
      field: 'version',
    });
  }
  const r = RunFileSchema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const field = zodIssuePath(issue);
    throw new AoError('AO_RUN_FILE_INVALID', `${at}${field ? `${field}: ` : ''}${issue?.message ?? 'does not match the schema'}`, field ? { field } : {});
  }
  return r.data;
}

/**
 * A finished run of `store` as a run file. `checkpoints: false` leaves its checkpoints out (a
 * smaller file that verifies, and replays from step 0 only).
 * @throws AoError AO_RUN_NOT_FOUND, AO_RUN_NOT_FINISHED
 */
export async function exportRun(store: Store, id: string, o: { checkpoints?: boolean } = {}): Promise<RunFile> {
  const run = await store.getRun(id);
  if (!run) throw new AoError('AO_RUN_NOT_FOUND', `no run ${JSON.stringify(id)}`, { field: 'id' });
  if (!TERMINAL_STATUSES.has(run.status))
    throw new AoError('AO_RUN_NOT_FINISHED', `run ${id} is ${run.status}: only a finished run is exported`, { field: 'id' });
  const events = await store.listEvents(id, { limit: Number.MAX_SAFE_INTEGER });
  const cps = o.checkpoints === false ? [] : await Promise.all((await store.listCheckpoints(id)).map((c) => store.getCheckpoint(id, c.step)));
  const { graph, graphVersion, status, input, output, error, budget, usage, nodes, traceId, replay, createdAt, startedAt, finishedAt } = run;
  return {
    format: RUN_FILE_FORMAT,
    version: RUN_FILE_VERSION,
    exportedAt: isoNow(),
    run: { id, graph, graphVersion, status, input, output, error, budget, usage, nodes, traceId, replay, createdAt, startedAt, finishedAt },
    events,
    checkpoints: cps.flatMap((c) =>
      c ? [{ step: c.step, seq: c.seq, node: c.node, graphVersion: c.graphVersion, state: c.state, createdAt: c.createdAt }] : [],
    ),
  };
}

/** The row of a run file as the verifier and the stores read runs (finished, held by no one). */
export function runRecordOf(file: RunFile, tenant = 'default'): RunRecord {
  return {
    ...file.run,
    owner: null,
    leaseExpiresAt: null,
    cancelRequested: false,
    lastSeq: file.events.at(-1)!.seq,
    tenant,
    idempotencyKey: null,
    waits: [],
    wakeAt: null,
    updatedAt: file.run.finishedAt ?? file.run.createdAt,
  };
}

/**
 * Load a run file into `store` for `tenant`: shown, replayed from any step it has a checkpoint
 * for, diffed and verified as a run recorded there. It keeps its id: a run's envelope ids derive
 * from its id and what each envelope is (a recorded replay finds the original's envelopes by
 * computing them), so a file is renamed only by making its ids again (`Verifier.rename` in
 * `@ao/actors`, `Engine.renamedRun`). An id already stored is AO_RUN_EXISTS.
 */
export async function importRun(store: Store, file: RunFile, o: { tenant?: string } = {}): Promise<RunRecord> {
  return store.importRun({ run: { ...file.run, tenant: o.tenant ?? 'default' }, events: file.events, checkpoints: file.checkpoints });
}
