/** `node --import tsx bench/src/scale/main.ts`: the scaling bench alone, printed (pnpm bench writes CLUSTER.md). */
import { clusterScaleBench, scaleSettings } from './cluster-scale.js';

const r = await clusterScaleBench(scaleSettings(), (s) => console.log(s));
console.log(JSON.stringify(r, null, 1));
process.exit(0);
