import { bigserial, index, integer, jsonb, pgTable, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

/** One row a run: its state, not its history (that is the event log). */
export const runs = pgTable(
  'runs',
  {
    /** Insertion order, for stable paging. */
    n: bigserial('n', { mode: 'number' }).notNull().unique(),
    id: text('id').primaryKey(),
    graph: text('graph').notNull(),
    graphVersion: text('graph_version').notNull(),
    status: text('status').notNull(),
    input: jsonb('input').notNull(),
    output: jsonb('output'),
    error: jsonb('error'),
    budget: jsonb('budget').notNull(),
    usage: jsonb('usage').notNull(),
    nodes: jsonb('nodes').notNull(),
    traceId: text('trace_id'),
    /** The runtime node that hosts the run. */
    owner: text('owner'),
    /** Seq of the last event written: the journal continues from it. */
    lastSeq: integer('last_seq').notNull().default(0),
    createdAt: timestamp('created_at', { withTimezone: true, mode: 'string' }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'string' }).notNull(),
    startedAt: timestamp('started_at', { withTimezone: true, mode: 'string' }),
    finishedAt: timestamp('finished_at', { withTimezone: true, mode: 'string' }),
  },
  (t) => [index('runs_status_idx').on(t.status, t.n), index('runs_graph_idx').on(t.graph, t.n)],
);

/** The event log: every envelope of a run, gapless `seq` per run, unique `id`. */
export const events = pgTable(
  'events',
  {
    id: uuid('id').primaryKey(),
    runId: text('run_id')
      .notNull()
      .references(() => runs.id, { onDelete: 'cascade' }),
    seq: integer('seq').notNull(),
    type: text('type').notNull(),
    from: text('from_path').notNull(),
    to: text('to_path').notNull(),
    causationId: uuid('causation_id'),
    payload: jsonb('payload'),
    trace: jsonb('trace'),
    time: timestamp('time', { withTimezone: true, mode: 'string' }).notNull(),
  },
  (t) => [uniqueIndex('events_run_seq_idx').on(t.runId, t.seq)],
);

export const schema = { runs, events };
export type Schema = typeof schema;
