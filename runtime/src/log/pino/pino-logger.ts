import { hostname } from 'node:os';
import { pino } from 'pino';
import type { Logger as Pino } from 'pino';
import type { LogFields, Logger, LogLevel } from '../log.js';

export interface PinoLoggerOptions {
  level?: LogLevel;
  /** Fields on every line (default: pid and host name, as Fastify's logger writes them). */
  base?: Record<string, unknown>;
  /** Where lines go (default stderr, written synchronously so a line before a crash is not lost). */
  destination?: { write(line: string): void };
}

/** The logger port on pino (the logger Fastify uses): one JSON object a line. The only importer of pino. */
export function pinoLogger(o: PinoLoggerOptions = {}): Logger {
  const p = pino(
    { level: o.level ?? 'info', base: o.base ?? { pid: process.pid, hostname: hostname() } },
    o.destination ?? pino.destination({ dest: 2, sync: true }),
  );
  return wrap(p);
}

function wrap(p: Pino): Logger {
  return {
    error: (msg: string, f?: LogFields) => p.error(f ?? {}, msg),
    warn: (msg: string, f?: LogFields) => p.warn(f ?? {}, msg),
    info: (msg: string, f?: LogFields) => p.info(f ?? {}, msg),
    debug: (msg: string, f?: LogFields) => p.debug(f ?? {}, msg),
    child: (f: LogFields) => wrap(p.child(f)),
  };
}
