import { graph } from '../builder.js';

/**
 * The product page's research swarm: a supervisor plans, a pipeline gathers with web_search, a
 * swarm analyses in parallel, a pipeline summarises. The per-tool cap stops a runaway search loop.
 */
export const researchSwarm = graph('research-swarm')
  .node('plan', { agent: 'supervisor', llm: 'default', instructions: 'Plan the research: list the questions to answer about the topic.' })
  .node('search', { agent: 'pipeline', tools: ['web_search'], instructions: 'Search the web for sources that answer the plan.' })
  .node('analyse', { agent: 'swarm', llm: 'default', concurrency: 3, instructions: 'Analyse the sources from your own angle.' })
  .node('summarise', { agent: 'pipeline', llm: 'default', instructions: 'Summarise the analyses into a short report.' })
  .edge('plan', 'search')
  .edge('search', 'analyse')
  .edge('analyse', 'summarise')
  .budget({ tokens: 50000, tools: 100, wallClockSec: 300, perTool: { web_search: 20 } });
