/**
 * The logger port: levelled lines with fields, so a line says which run and which node it is about
 * (`runId`, `nodeId`) and which part of the system wrote it (`component`). Runtime, actors and
 * gateway log through {@link log}; the process's entry point picks the adapter and its level
 * ({@link useLogger}), tests capture the lines (`captureLog` in `@ao/runtime/testing`).
 *
 * Logs are for operators. Anything a run does that a person or a test must see is an envelope in
 * the run's log, never only a log line (STYLE.md 9).
 */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The fields of a line. `err` is an error (its message and stack are written). */
export interface LogFields {
  readonly component?: string;
  readonly nodeId?: string;
  readonly runId?: string;
  readonly err?: unknown;
  readonly [key: string]: unknown;
}

export interface Logger {
  error(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  debug(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to each of its lines. */
  child(fields: LogFields): Logger;
}

/** Whether `v` names a level (e.g. the value of `AO_LOG_LEVEL`). */
export const isLogLevel = (v: unknown): v is LogLevel => typeof v === 'string' && (LOG_LEVELS as readonly string[]).includes(v);
