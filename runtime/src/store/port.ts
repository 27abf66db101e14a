import type { Envelope } from '../envelope/mod.js';
import type { NewRun, RunPatch, RunRecord, RunStatus } from './records.js';

export interface ListRunsQuery {
  status?: RunStatus;
  graph?: string;
  limit: number;
  /** Opaque cursor from a previous page's `next`. */
  cursor?: string;
}

/**
 * Durable state: runs and the event log. Adapters: PGlite (embedded, file-backed) and Postgres,
 * sharing one drizzle schema and one implementation ({@link DrizzleStore}).
 */
export interface Store {
  readonly kind: 'pglite' | 'postgres';
  createRun(run: NewRun): Promise<RunRecord>;
  getRun(id: string): Promise<RunRecord | undefined>;
  listRuns(q: ListRunsQuery): Promise<{ runs: RunRecord[]; next: string | null }>;
  /** Runs in one of `statuses`, optionally of one owner: what a restarted node must look at. */
  findRuns(q: { statuses: RunStatus[]; owner?: string }): Promise<RunRecord[]>;
  /**
   * Append events and apply a run patch in one transaction. Events already stored (same id) are
   * skipped, so a retried commit is harmless; the run's `lastSeq` follows the highest seq written.
   */
  commit(batch: { runId: string; events: Envelope[]; patch?: RunPatch }): Promise<void>;
  listEvents(runId: string, q: { after?: number; limit: number }): Promise<Envelope[]>;
  close(): Promise<void>;
}
