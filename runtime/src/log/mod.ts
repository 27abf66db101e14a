export * from './log.js';
export { log, useLogger, currentLogger } from './root.js';
export { pinoLogger, type PinoLoggerOptions } from './pino/pino-logger.js';
