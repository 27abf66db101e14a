import { z } from 'zod';
import { defineTool } from '../registry.js';

/** `noop`: accepts any object and does nothing; for benchmarks of the tool path itself. */
export const noop = defineTool({
  name: 'noop',
  description: 'Do nothing and return { ok: true }.',
  effect: 'pure',
  input: z.looseObject({}),
  async handler() {
    return { ok: true as const };
  },
});
