import { graph } from '@ao/graphs';
import type { GraphBuilder } from '@ao/graphs';

/**
 * A node whose agent may ask a person (`interrupt`, default answer `{answer: string}`): the
 * offline model calls every tool it is offered once, `ask_human` included, so the run waits for
 * an answer on its first turn.
 */
export const askAPerson = graph('ask-a-person')
  .node('draft', { agent: 'pipeline', instructions: 'Draft the reply to the customer.', interrupt: { prompt: 'Ask when the customer name is missing.' } })
  .node('send', { agent: 'pipeline', instructions: 'Send it.' })
  .edge('draft', 'send');

/** Three steps under a soft token limit the second one passes (as in actors/test/hitl.test.ts): the run waits for a person to grant more. */
export const softBudget = graph('soft-budget')
  .node('a', { agent: 'pipeline', instructions: 'Step a.' })
  .node('b', { agent: 'pipeline', instructions: 'Step b.' })
  .node('c', { agent: 'pipeline', instructions: 'Step c.' })
  .edge('a', 'b')
  .edge('b', 'c')
  .budget({ tokens: 100_000, soft: { tokens: 1200 } });

export const graphs = [askAPerson, softBudget] as GraphBuilder<unknown>[];
