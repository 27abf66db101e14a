/* global fetch */
// The load phase's submitter (bench/src/load.ts), on a worker thread of its own: `n` POST /runs
// at once, each timed from its request to its answer. A client on the server's own thread would
// spend that thread's time on 1,000 fetches (about a third of it in a profile of the burst) and
// count it in every submit's latency; a real client is another process.
//
// `raw: true` sends each request as bytes written on a connection of its own (`node:net`), and
// reads the answer's status line, headers and body: what 1,000 separate clients would send, with
// next to none of a client library's cost on this thread. With `fetch` (undici) the thread spends
// ~0.5 s at a load of ~10 setting up 1,000 requests before the first reaches the server, and that
// time is in every request's latency (see DESIGN.md, "Intake under load").
import { Buffer } from 'node:buffer';
import { connect } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { performance } from 'node:perf_hooks';
import { URL } from 'node:url';

/** @type {{ address: string, key: string, graph: string, n: number, raw?: boolean }} */
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

const url = new URL(w.address);

/**
 * One POST /runs as bytes on a connection of its own; resolves with the status and the body's
 * JSON once the whole answer (Content-Length) is read.
 * @param {number} i
 */
function submitRaw(i) {
  const body = JSON.stringify({ graph: w.graph, input: { i } });
  const head =
    `POST /runs HTTP/1.1\r\nHost: ${url.host}\r\nContent-Type: application/json\r\nAuthorization: Bearer ${w.key}\r\n` +
    `Idempotency-Key: load-${i}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`;
  const s = performance.now();
  return new Promise((resolve) => {
    const sock = connect(Number(url.port), url.hostname);
    /** @type {Buffer[]} */
    const chunks = [];
    let done = false;
    const finish = () => {
      if (done) return;
      const all = Buffer.concat(chunks).toString('utf8');
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return;
      const len = Number(/\r\ncontent-length:\s*(\d+)/i.exec(all.slice(0, end))?.[1] ?? NaN);
      const rest = all.slice(end + 4);
      if (Number.isFinite(len) && Buffer.byteLength(rest) < len) return;
      done = true;
      const ms = performance.now() - s;
      lastAccepted = Math.max(lastAccepted, performance.now());
      const status = Number(all.slice(9, 12));
      let id;
      try {
        id = /** @type {{ id?: string }} */ (JSON.parse(rest)).id;
      } catch {
        id = undefined;
      }
      sock.destroy();
      resolve(status === 202 && id ? { id, ms } : { ms });
    };
    sock.on('data', (b) => (chunks.push(b), finish()));
    sock.on('end', finish);
    sock.on('error', () => {
      if (done) return;
      done = true;
      resolve({ ms: performance.now() - s });
    });
    sock.write(head + body);
  });
}

const answers = await Promise.all(Array.from({ length: w.n }, (_, i) => (w.raw ? submitRaw(i) : submit(i))));
parentPort?.postMessage({ answers, submitMs: lastAccepted - t0 });
