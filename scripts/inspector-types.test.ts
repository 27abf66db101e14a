import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { GENERATED, renderInspectorTypes, typeOf } from './inspector-types.js';

describe("the inspector's types of the gateway's shapes", () => {
  it('are current: inspector/src/lib/api/generated.ts is what the gateway schemas generate (else run `npx tsx scripts/inspector-types.ts`)', async () => {
    expect(await readFile(GENERATED, 'utf8')).toBe(renderInspectorTypes());
  });

  it('turn each JSON Schema form zod writes into its TypeScript type', () => {
    expect(typeOf({ type: 'string' })).toBe('string');
    expect(typeOf({ type: ['string', 'null'] })).toBe('string | null');
    expect(typeOf({ type: 'integer' })).toBe('number');
    expect(typeOf({ type: 'string', enum: ['a', 'b'] })).toBe('"a" | "b"');
    expect(typeOf({ const: 'run' })).toBe('"run"');
    expect(typeOf({ $ref: 'Usage' })).toBe('Usage');
    expect(typeOf({})).toBe('unknown');
    expect(typeOf({ type: 'array', items: { type: 'string' } })).toBe('string[]');
    expect(typeOf({ type: 'array', items: { anyOf: [{ type: 'string' }, { type: 'null' }] } })).toBe('Array<string | null>');
    expect(typeOf({ type: 'object', additionalProperties: { type: 'number' } })).toBe('Record<string, number>');
    expect(typeOf({ type: 'object', properties: { a: { type: 'string' }, 'b-c': { type: 'boolean' } }, required: ['a'] })).toBe(
      '{\n  a: string;\n  "b-c"?: boolean;\n}',
    );
  });
});
