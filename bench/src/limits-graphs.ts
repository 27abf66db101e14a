/** The provider-limits bench's graph, as a module `ao node` processes load through AO_GRAPHS. */
import { graph } from '@ao/graphs';

export const LIMITS_GRAPH = 'one-call';

/** One LLM call a run: every run is one request against the limited provider. */
export const graphs = [graph(LIMITS_GRAPH).node('answer', { agent: 'pipeline', instructions: 'Answer in one line.' }).budget({ tokens: 100_000 })];
