/** The bench graphs, as a module `ao node` processes load through AO_GRAPHS. */
import { benchPipeline, benchSwarm } from './workload.js';

export const graphs = [benchPipeline(), benchSwarm()];
