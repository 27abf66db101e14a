import { describe, expect, it } from 'vitest';
import { captureLog, logLine } from '../testing/log.js';
import { log, pinoLogger, useLogger } from './mod.js';
import type { LogFields, Logger } from './mod.js';

function lines(): { out: string[]; destination: { write(line: string): void } } {
  const out: string[] = [];
  return { out, destination: { write: (l: string) => void out.push(l) } };
}

describe('the pino logger', () => {
  it('writes one JSON object a line, with its level, message, fields and the error', () => {
    const { out, destination } = lines();
    const logger = pinoLogger({ level: 'info', destination, base: { pid: 1 } }).child({ component: 'engine', nodeId: 'n1' });
    logger.error('could not resume the run', { runId: 'r1', err: new Error('boom') });
    expect(out).toHaveLength(1);
    expect(out[0]!.endsWith('\n')).toBe(true);
    const line = JSON.parse(out[0]!) as Record<string, unknown>;
    expect(line).toMatchObject({
      level: 50,
      pid: 1,
      component: 'engine',
      nodeId: 'n1',
      runId: 'r1',
      msg: 'could not resume the run',
      err: { message: 'boom', type: 'Error' },
    });
    expect(typeof line.time).toBe('number');
  });

  it('drops the lines below its level, and writes nothing when silent', () => {
    const { out, destination } = lines();
    const warn = pinoLogger({ level: 'warn', destination });
    warn.debug('d');
    warn.info('i');
    warn.warn('w');
    expect(out.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['w']);
    const silent = pinoLogger({ level: 'silent', destination });
    silent.error('e');
    expect(out).toHaveLength(1);
  });
});

describe('the root logger', () => {
  it('sends its lines, with a child’s fields, to the logger in place, and stops when that is restored', () => {
    const seen: Array<[string, string, LogFields | undefined]> = [];
    const to = (level: string) => (msg: string, f?: LogFields) => void seen.push([level, msg, f]);
    const sink: Logger = { error: to('error'), warn: to('warn'), info: to('info'), debug: to('debug'), child: () => sink };
    const child = log.child({ component: 'bus' });
    const restore = useLogger(sink);
    child.warn('slow', { runId: 'r1' });
    log.error('bare');
    restore();
    child.warn('after');
    expect(seen).toEqual([
      ['warn', 'slow', { component: 'bus', runId: 'r1' }],
      ['error', 'bare', {}],
    ]);
  });
});

describe('captureLog', () => {
  it('keeps what is logged (a child made before the capture too), as records and as lines, until restored', () => {
    const logger = log.child({ component: 'engine', nodeId: 'n1' });
    const logs = captureLog();
    logger.error('lost the lease', { runId: 'r1', err: new Error('gone') });
    logger.info('claimed');
    logs.restore();
    logger.error('not captured');
    expect(logs.records.map((r) => [r.level, r.msg])).toEqual([
      ['error', 'lost the lease'],
      ['info', 'claimed'],
    ]);
    expect(logs.lines()).toEqual(['error [engine] lost the lease nodeId=n1 runId=r1 err=gone']);
    expect(logs.lines('info')).toHaveLength(2);
    expect(logLine(logs.records[1]!)).toBe('info [engine] claimed nodeId=n1');
  });

  it('forwards to the logger it replaced only the lines `forward` picks', () => {
    const outer = captureLog();
    const inner = captureLog({ forward: (r) => r.level === 'error' });
    log.warn('kept inside');
    log.error('passed on');
    inner.restore();
    outer.restore();
    expect(inner.records.map((r) => r.msg)).toEqual(['kept inside', 'passed on']);
    expect(outer.records.map((r) => r.msg)).toEqual(['passed on']);
  });
});
