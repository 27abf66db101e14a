export type { Store, ListRunsQuery, CommitBatch, ImportedRun } from './port.js';
export * from './records.js';
export { DrizzleStore } from './drizzle-store.js';
export { openPgliteStore } from './pglite/pglite-store.js';
export { openPgStore } from './pg/pg-store.js';
export { resolveRunRef, RUN_ID_PREFIX, RUN_ID_PREFIX_MIN } from './run-ref.js';
export { RunIntake } from './run-intake.js';
