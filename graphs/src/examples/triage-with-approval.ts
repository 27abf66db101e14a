import { z } from 'zod';
import { graph } from '../builder.js';

/** What a person answers before a refund: approve or not, optionally with a lower amount and a note. */
export const RefundApprovalSchema = z.strictObject({
  approved: z.boolean(),
  /** A corrected amount, in the charge's currency (the refund node is told). */
  amount: z.number().positive().optional(),
  comment: z.string().max(2000).optional(),
});

/**
 * `triage` with a person in the loop: a refund is approved (or rejected) by a person before
 * `stripe_refund` can run. While nobody answers, the run is `waiting`, checkpointed and stopped
 * (no memory, no lease); the answer (POST /runs/:id/signal, `ao signal`, or the inspector) resumes
 * it on any node. Rejected, `refund` is skipped and the run ends without a refund. Waiting does
 * not use up the 60 s wall clock. Nobody answering within three days rejects it.
 */
export const triageWithApproval = graph('triage-with-approval')
  .node('classify', { agent: 'supervisor', llm: 'default', instructions: 'Classify the customer request.' })
  .node('refund', {
    agent: 'pipeline',
    tools: ['stripe_refund'],
    instructions: 'Refund the customer charge.',
    approval: { prompt: 'Approve this refund?', schema: RefundApprovalSchema, timeoutSec: 3 * 24 * 3600, onTimeout: 'reject' },
  })
  .node('escalate', { agent: 'pipeline', instructions: 'Write a hand-off note for a human agent.' })
  .edge('classify', 'refund', (ctx) => (ctx.input as { intent?: unknown } | undefined)?.intent === 'refund')
  .edge('classify', 'escalate', (ctx) => (ctx.input as { intent?: unknown } | undefined)?.intent !== 'refund')
  .budget({ tokens: 8000, tools: 10, wallClockSec: 60, perTool: { stripe_refund: 1 } });
