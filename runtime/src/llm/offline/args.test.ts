import { describe, it, expect } from 'vitest';
import { z } from 'zod';
import { generateArgs } from './args.js';

const ctx = { input: { topic: 'otters', limit: 7 }, instructions: 'Find facts about the animal.', nodeId: 'facts' };
const jsonSchema = (s: z.ZodType) => z.toJSONSchema(s, { io: 'input' }) as Record<string, unknown>;

describe('generateArgs', () => {
  it('fits a schema with nesting, arrays, bounds, enums and nullable fields', () => {
    const schema = z.object({
      question: z.string().max(20),
      userId: z.string(),
      limit: z.number().int().min(1).max(5).optional(),
      ratio: z.number().gt(0).lt(1),
      page: z.number().int().min(2).max(9),
      totalCents: z.number().int().positive().max(500),
      tags: z.array(z.string().min(4)).min(2),
      mode: z.enum(['fast', 'slow']),
      strict: z.boolean(),
      filter: z.object({ lang: z.string().length(2), since: z.number().int().nullable() }),
      note: z.string().optional(),
    });
    const args = generateArgs(jsonSchema(schema), ctx);
    expect(() => schema.parse(args)).not.toThrow();
    expect(args).toMatchObject({
      question: 'otters find facts',
      userId: expect.stringMatching(/^usr_offline_/),
      page: 2,
      totalCents: 500,
      mode: 'fast',
      strict: false,
    });
    // limit is optional and the input's 7 is out of range, so it is left out; note is never guessed.
    expect(args).not.toHaveProperty('limit');
    expect(args).not.toHaveProperty('note');
  });

  it('takes an optional value from the run input when it fits', () => {
    const schema = z.object({ limit: z.number().int().max(10).optional() });
    expect(generateArgs(jsonSchema(schema), ctx)).toEqual({ limit: 7 });
  });

  it('follows $ref in recursive schemas without looping', () => {
    const Node: z.ZodType<{ name: string; child?: unknown }> = z.lazy(() => z.object({ name: z.string(), child: Node.optional() }));
    const schema = z.object({ root: Node });
    expect(() => schema.parse(generateArgs(jsonSchema(schema), ctx))).not.toThrow();
  });
});
