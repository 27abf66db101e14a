import type { LogFields, Logger } from '../log/mod.js';
import { currentLogger, useLogger } from '../log/mod.js';

export type CapturedLevel = 'error' | 'warn' | 'info' | 'debug';
const RANK: Record<CapturedLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** One line the code logged while a capture was on. */
export interface LogRecord {
  readonly level: CapturedLevel;
  readonly msg: string;
  readonly fields: LogFields;
}

export interface LogCapture {
  /** Every line logged since the capture began, in order. */
  readonly records: LogRecord[];
  /** The lines at `level` or above (default `warn`: what an operator is shown), as {@link logLine}s. */
  lines(level?: CapturedLevel): string[];
  /** Stops capturing: lines go to the logger of before again. */
  restore(): void;
}

/** A record as one line of text: level, component, message, then the other fields (an error by its message). */
export function logLine(r: LogRecord): string {
  const { component, err, ...rest } = r.fields;
  const extra = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  const error = err === undefined ? [] : [`err=${err instanceof Error ? err.message : String(err)}`];
  return [`${r.level}${component ? ` [${component}]` : ''} ${r.msg}`, ...extra, ...error].join(' ');
}

/**
 * Captures what runtime, actors and gateway log (through `log`), for a test to assert on, instead
 * of spying on the console. Nothing captured is printed unless `forward` says so (then it goes to
 * the logger that was in place).
 *
 * @example
 * const logs = captureLog();
 * try {
 *   await engine.waitForRun(id);
 *   expect(logs.lines()).toEqual([]);
 * } finally {
 *   logs.restore();
 * }
 */
export function captureLog(o: { forward?: (r: LogRecord) => boolean } = {}): LogCapture {
  const records: LogRecord[] = [];
  const before = currentLogger();
  const at =
    (level: CapturedLevel, bound: LogFields) =>
    (msg: string, f?: LogFields): void => {
      const r: LogRecord = { level, msg, fields: f ? { ...bound, ...f } : bound };
      records.push(r);
      if (o.forward?.(r)) before[level](msg, r.fields);
    };
  const make = (bound: LogFields): Logger => ({
    error: at('error', bound),
    warn: at('warn', bound),
    info: at('info', bound),
    debug: at('debug', bound),
    child: (f) => make({ ...bound, ...f }),
  });
  const restore = useLogger(make({}));
  let restored = false;
  const stop = () => {
    if (restored) return;
    restored = true;
    restore();
  };
  return {
    records,
    lines: (level = 'warn') => records.filter((r) => RANK[r.level] >= RANK[level]).map(logLine),
    restore: stop,
  };
}
