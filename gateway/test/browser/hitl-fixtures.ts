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

export const graphs = [askAPerson] as GraphBuilder<unknown>[];
