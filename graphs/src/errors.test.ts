import { describe, it, expect } from 'vitest';
import { AoError, ERROR_CODES, GraphError, isAoError, zodIssuePath } from './errors.js';

describe('ERROR_CODES catalogue', () => {
  const codes = Object.keys(ERROR_CODES);

  it('holds each code exactly once', () => {
    expect(codes.length).toBeGreaterThan(0);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('spells every code as AO_ followed by upper-case letters and underscores', () => {
    for (const code of codes) expect(code, code).toMatch(/^AO_[A-Z_]+$/);
  });

  it('describes every code with a non-empty sentence', () => {
    for (const [code, description] of Object.entries(ERROR_CODES)) {
      expect(typeof description, code).toBe('string');
      expect(description.trim().length, code).toBeGreaterThan(0);
    }
  });
});

describe('GraphError', () => {
  it('is an AoError carrying its code, field and details', () => {
    const e = new GraphError('AO_GRAPH_EMPTY', 'graph has no nodes', { field: 'nodes', details: { n: 0 } });
    expect(e).toBeInstanceOf(GraphError);
    expect(e).toBeInstanceOf(AoError);
    expect(e).toBeInstanceOf(Error);
    expect(isAoError(e)).toBe(true);
    expect(e.name).toBe('GraphError');
    expect(e.code).toBe('AO_GRAPH_EMPTY');
    expect(e.field).toBe('nodes');
    expect(e.details).toEqual({ n: 0 });
    expect(e.retryable).toBe(false);
  });

  it('serialises to JSON without the keys it does not have', () => {
    expect(new GraphError('AO_GRAPH_EMPTY', 'no nodes').toJSON()).toEqual({ code: 'AO_GRAPH_EMPTY', message: 'no nodes' });
    expect(new GraphError('AO_GRAPH_EMPTY', 'no nodes', { field: 'nodes' }).toJSON()).toEqual({
      code: 'AO_GRAPH_EMPTY',
      message: 'no nodes',
      field: 'nodes',
    });
  });
});

describe('isAoError', () => {
  it('recognises AoErrors by their brand, not by class identity', () => {
    expect(isAoError(new AoError('AO_INTERNAL', 'x'))).toBe(true);
    expect(isAoError({ aoError: true, code: 'AO_INTERNAL' })).toBe(true);
  });

  it('rejects plain errors and non-objects', () => {
    expect(isAoError(new Error('x'))).toBe(false);
    expect(isAoError(null)).toBe(false);
    expect(isAoError(undefined)).toBe(false);
    expect(isAoError('AO_INTERNAL')).toBe(false);
    expect(isAoError({ aoError: 'yes' })).toBe(false);
  });
});

describe('zodIssuePath', () => {
  it('joins the issue path under the prefix with dots', () => {
    expect(zodIssuePath({ path: ['tokens'] }, 'budget')).toBe('budget.tokens');
    expect(zodIssuePath({ path: ['retry', 'attempts'] }, 'nodes.a')).toBe('nodes.a.retry.attempts');
    expect(zodIssuePath({ path: [] }, 'budget')).toBe('budget');
    expect(zodIssuePath({ path: [] })).toBeUndefined();
    expect(zodIssuePath(undefined, 'budget')).toBe('budget');
  });
});
