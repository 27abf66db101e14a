// Test-only helpers of this package (imports vitest).
import { expect } from 'vitest';
import { GraphError, isAoError } from './errors.js';

/** Run `fn`, expecting a GraphError (an AoError), and return it. */
export function graphError(fn: () => unknown): GraphError {
  try {
    fn();
  } catch (e) {
    expect(isAoError(e)).toBe(true);
    expect(e).toBeInstanceOf(GraphError);
    return e as GraphError;
  }
  throw new Error('expected a GraphError, but nothing was thrown');
}
