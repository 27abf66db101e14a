/* global fetch */
// The load phase's submitter (bench/src/load.ts), on a worker thread of its own: `n` POST /runs
// at once, each timed from its request to its answer. A client on the server's own thread would
// spend that thread's time on 1,000 fetches (about a third of it in a profile of the burst) and
// count it in every submit's latency; a real client is another process.
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';

/** @type {{ address: string, key: string, graph: string, n: number }} */
const w = workerData;
const t0 = performance.now();
let lastAccepted = t0;

/** @param {number} i */
async function submit(i) {
  const s = performance.now();
  const res = await fetch(`${w.address}/runs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${w.key}`, 'idempotency-key': `load-${i}` },
    body: JSON.stringify({ graph: w.graph, input: { i } }),
  });
  const ms = performance.now() - s;
  const body = /** @type {{ id?: string }} */ (await res.json());
  lastAccepted = Math.max(lastAccepted, performance.now());
  return res.status === 202 && body.id ? { id: body.id, ms } : { ms };
}

const answers = await Promise.all(Array.from({ length: w.n }, (_, i) => submit(i)));
parentPort?.postMessage({ answers, submitMs: lastAccepted - t0 });
