import type { LogFields, Logger } from './log.js';
import { isLogLevel } from './log.js';
import { pinoLogger } from './pino/pino-logger.js';

let current: Logger | undefined;

/**
 * The process's logger. Until an entry point calls {@link useLogger}, lines go to stderr as JSON
 * (pino) at the level in `AO_LOG_LEVEL` (default `info`; the test runner sets `silent`).
 */
function sink(): Logger {
  return (current ??= pinoLogger({ level: isLogLevel(process.env.AO_LOG_LEVEL) ? process.env.AO_LOG_LEVEL : 'info' }));
}

/** Resolves the process's logger on each line, so a logger swapped in later (a test's capture) sees every line. */
class Bound implements Logger {
  constructor(private readonly fields: LogFields) {}
  private with(f: LogFields | undefined): LogFields {
    return f ? { ...this.fields, ...f } : this.fields;
  }
  error(msg: string, f?: LogFields): void {
    sink().error(msg, this.with(f));
  }
  warn(msg: string, f?: LogFields): void {
    sink().warn(msg, this.with(f));
  }
  info(msg: string, f?: LogFields): void {
    sink().info(msg, this.with(f));
  }
  debug(msg: string, f?: LogFields): void {
    sink().debug(msg, this.with(f));
  }
  child(f: LogFields): Logger {
    return new Bound(this.with(f));
  }
}

/**
 * The root logger. A module takes a child with its component once, and adds the run and node per
 * line:
 *
 * @example
 * const logger = log.child({ component: 'engine' });
 * logger.error('could not resume the run', { nodeId, runId, err });
 */
export const log: Logger = new Bound({});

/** Sends every line of {@link log} (and its children) to `logger` until the returned function is called. */
export function useLogger(logger: Logger): () => void {
  const before = current;
  current = logger;
  return () => {
    current = before;
  };
}

/** The logger {@link log} writes to now (a capture forwards to the one it replaced). */
export function currentLogger(): Logger {
  return sink();
}
