import { z } from 'zod';
import { graph } from '../builder.js';
import type { RunContext } from '../types.js';

/** How many drafts at most: the loop draft -> critique -> draft is bounded by it. */
export const MAX_DRAFTS = 3;

const approved = (ctx: RunContext): boolean => /^APPROVED\b/.test(ctx.outputs.critique?.text ?? '');

/**
 * A bounded loop: draft, critique, and draft again until the critic approves or MAX_DRAFTS drafts
 * were written; then publish. `maxIterations` on `draft` is what makes the cycle legal.
 */
export const draftCritique = graph('draft-critique', { input: z.object({ brief: z.string().min(1) }) })
  .node('outline', { agent: 'supervisor', instructions: 'Outline the piece the brief asks for.' })
  .node('draft', { agent: 'pipeline', maxIterations: MAX_DRAFTS, instructions: 'Write the draft; address the latest critique if any.' })
  .node('critique', {
    agent: 'supervisor',
    instructions: 'Review the draft. Reply APPROVED if it is ready to publish, otherwise list what to fix.',
  })
  .node('publish', { agent: 'pipeline', instructions: 'Polish the approved draft for publication.' })
  .edge('outline', 'draft')
  .edge('draft', 'critique')
  .edge('critique', 'draft', (ctx) => !approved(ctx))
  .edge('critique', 'publish', (ctx) => approved(ctx) || (ctx.iterations.draft ?? 0) >= MAX_DRAFTS)
  .budget({ tokens: 20000, wallClockSec: 120 });
