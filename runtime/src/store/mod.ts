export type { Store, ListRunsQuery, CommitBatch } from './port.js';
export * from './records.js';
export { DrizzleStore } from './drizzle-store.js';
export { openPgliteStore } from './pglite/pglite-store.js';
export { openPgStore } from './pg/pg-store.js';
export { RunIntake } from './run-intake.js';
