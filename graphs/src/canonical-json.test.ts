import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, canonicalJsonSlow } from './canonical-json.js';

describe('canonicalJson', () => {
  it('writes every JSON value as its definition does (keys sorted at every depth)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(canonicalJson(v)).toBe(canonicalJsonSlow(v));
      }),
      { numRuns: 2000 },
    );
  });

  it('writes any value as its definition does, or throws as it does', () => {
    const same = (v: unknown) => {
      let want: unknown;
      try {
        want = canonicalJsonSlow(v);
      } catch (e) {
        expect(() => canonicalJson(v)).toThrow((e as Error).constructor as new () => Error);
        return;
      }
      expect(canonicalJson(v)).toBe(want);
    };
    fc.assert(
      fc.property(
        fc.anything({
          withBigInt: true,
          withDate: true,
          withMap: true,
          withSet: true,
          withTypedArray: true,
          withNullPrototype: true,
          withBoxedValues: true,
          withSparseArray: true,
          withObjectString: true,
          withUnicodeString: true,
        }),
        same,
      ),
      { numRuns: 2000 },
    );
    for (const v of [
      undefined,
      () => 1,
      Symbol('s'),
      { a: undefined, b: () => 1 },
      [undefined, () => 1],
      { 10: 'x', 9: 'y', a: 1 },
      { toJSON: () => ({ b: 1, a: 2 }) },
      new Date(0),
      { __proto__: null, b: 1, a: [NaN, -0, Infinity] },
      JSON.parse('{"__proto__":{"b":1,"a":2}}'),
    ])
      same(v);
  });

  it('sorts keys by UTF-16 code units, as the definition does', () => {
    expect(canonicalJson({ b: 1, a: { z: [1, { y: 2, x: null }], é: 'e', B: true } })).toBe('{"a":{"B":true,"z":[1,{"x":null,"y":2}],"é":"e"},"b":1}');
  });
});
