import { describe, expect, it } from 'vitest';
import { seqBounds } from './seq-bounds.js';

describe('seqBounds', () => {
  it("takes each run's highest bound, and none when a ref gives none", () => {
    expect(
      seqBounds([
        { runId: 'a', upTo: 3 },
        { runId: 'a', upTo: 7 },
        { runId: 'b', upTo: 1 },
      ]),
    ).toEqual(
      new Map([
        ['a', 7],
        ['b', 1],
      ]),
    );
    expect(seqBounds([{ runId: 'a', upTo: 3 }, { runId: 'b' }])).toBeUndefined();
  });
});
