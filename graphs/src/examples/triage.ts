import { graph } from '../builder.js';

/** The product page's conditional routing: an edge is followed only when its predicate is truthy. */
export const triage = graph('triage')
  .node('classify', { agent: 'supervisor', llm: 'default', instructions: 'Classify the customer request.' })
  .node('refund', { agent: 'pipeline', tools: ['stripe_refund'], instructions: 'Refund the customer charge.' })
  .node('escalate', { agent: 'pipeline', instructions: 'Write a hand-off note for a human agent.' })
  .edge('classify', 'refund', (ctx) => (ctx.input as { intent?: unknown } | undefined)?.intent === 'refund')
  .edge('classify', 'escalate', (ctx) => (ctx.input as { intent?: unknown } | undefined)?.intent !== 'refund')
  .budget({ tokens: 8000, tools: 10, wallClockSec: 60, perTool: { stripe_refund: 1 } });
