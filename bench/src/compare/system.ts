/** The systems compared, each implemented the way its users would write the same workloads. */
export const SYSTEMS = ['ours-embedded', 'ours-pg-nats', 'langgraph', 'dbos'] as const;
export type SystemName = (typeof SYSTEMS)[number];

export const SYSTEM_LABEL: Record<SystemName, string> = {
  'ours-embedded': 'ours (PGlite + in-process bus)',
  'ours-pg-nats': 'ours (Postgres + NATS)',
  langgraph: 'LangGraph.js + PostgresSaver',
  dbos: 'DBOS Transact',
};

/** Steps of the W1/W3 pipeline; branches of W2; steps of the W4 loop. */
export const PIPELINE_STEPS = 5;
export const FANOUT_BRANCHES = 16;

/**
 * One system under test, opened in its own process on its own scratch database. A "step" is one
 * unit of agent work: one call of the LLM stand-in and one of the no-op tool, made durable the way
 * the system makes work durable.
 */
export interface BenchSystem {
  /** W1/W3: one 5-step sequential run, start to finish. */
  pipeline(): Promise<void>;
  /** W2: one run that fans out to 16 branches and joins them. */
  fanout(): Promise<void>;
  /** W4: one run of `steps` steps (a loop); returns its id. */
  loop(steps: number): Promise<string>;
  /** W4: re-run the last step of that finished run from the state before it, to the run's end. */
  replayLast(id: string): Promise<void>;
  /** W5, before the crash: start one 5-step run whose step 3 hangs (`i`: its index); returns its id. */
  startHanging(i: number): Promise<string>;
  /**
   * W5, after the restart: whatever the system needs to resume the runs in flight (nothing where
   * recovery is automatic at open), until every one of them has ended; returns how many failed.
   */
  resumeAll(ids: string[]): Promise<number>;
  /** W6: one conversation of `turns` tool-calling turns and a final answer, to its end; returns its id. */
  conversation(turns: number): Promise<string>;
  /** W6, before the crash: start that conversation (its tool call at the kill turn hangs); returns its id. */
  startConversation(turns: number): Promise<string>;
  /** W6, after the restart: whatever the system needs to resume it, until it has ended; whether it ended with the final answer. */
  resumeConversation(id: string, turns: number): Promise<boolean>;
  /** Database connections' server processes, for CPU accounting (none for PGlite). */
  usesServer: boolean;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** Scratch Postgres database (every system but ours-embedded). */
  dbUrl?: string;
  /** PGlite data dir (ours-embedded). */
  dataDir?: string;
  natsUrl?: string;
  natsPrefix?: string;
  /** Length of the W4 loop (ours registers its loop graphs up front). */
  loopSteps?: number;
  /** W6's turns, in a W6 process (ours registers the conversation's graph and its model up front). */
  w6Turns?: number;
}
