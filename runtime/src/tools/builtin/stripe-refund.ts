import { z } from 'zod';
import { defineTool } from '../registry.js';
import { hashHex } from './digest.js';

/**
 * `stripe_refund`: refund (part of) a Stripe charge. Idempotent: the refund id is derived from the
 * call's idempotency key, as Stripe's `Idempotency-Key` header would make a real retry return
 * the first refund. This build makes no Stripe call; the result says so (`offline: true`).
 */
export const stripeRefund = defineTool({
  name: 'stripe_refund',
  description: 'Refund a Stripe charge, fully or in part. Amount in the smallest currency unit (cents).',
  effect: 'idempotent',
  input: z.object({
    chargeId: z.string().min(3),
    amountCents: z.number().int().positive(),
    reason: z.enum(['requested_by_customer', 'duplicate', 'fraudulent']),
  }),
  async handler({ chargeId, amountCents }, ctx) {
    return {
      offline: true,
      note: 'offline stand-in: no Stripe call was made',
      refundId: `re_offline_${hashHex(ctx.idempotencyKey, 16)}`,
      chargeId,
      amountCents,
      status: 'succeeded' as const,
    };
  },
});
