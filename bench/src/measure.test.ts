import { describe, it, expect } from 'vitest';
import { mean, percentile, summarize } from './measure.js';

describe('percentile (nearest rank)', () => {
  it('gives the median of an odd-sized sample whatever its order', () => {
    expect(percentile([5, 1, 4, 2, 3], 50)).toBe(3);
  });

  it('gives the lower middle value of an even-sized sample at p50', () => {
    expect(percentile([4, 1, 3, 2], 50)).toBe(2);
  });

  it('gives the minimum at p0 and the maximum at p100', () => {
    const xs = [7, 3, 9, 1];
    expect(percentile(xs, 0)).toBe(1);
    expect(percentile(xs, 100)).toBe(9);
  });

  it('gives the 99th of 100 values at p99 and the largest of fewer than 100', () => {
    const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(hundred, 99)).toBe(99);
    expect(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99)).toBe(10);
  });

  it('returns the only value of a one-element sample for any p', () => {
    expect(percentile([42], 1)).toBe(42);
    expect(percentile([42], 99)).toBe(42);
  });

  it('returns NaN for an empty sample', () => {
    expect(percentile([], 50)).toBeNaN();
  });

  it('rejects p outside 0..100', () => {
    expect(() => percentile([1], -1)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
  });

  it('does not reorder its input', () => {
    const xs = [3, 1, 2];
    percentile(xs, 50);
    expect(xs).toEqual([3, 1, 2]);
  });
});

describe('summarize', () => {
  it('reports count, p50, p99, mean, min and max', () => {
    expect(summarize([2, 4, 6, 8])).toEqual({ n: 4, p50: 4, p99: 8, mean: 5, min: 2, max: 8 });
    expect(mean([])).toBeNaN();
  });
});
