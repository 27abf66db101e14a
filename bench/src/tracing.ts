import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Engine } from '@ao/actors';
import { tracingTo } from '@ao/runtime';
import { summarize } from './measure.js';
import type { Summary } from './measure.js';
import { BENCH_GRAPH, BENCH_STEPS } from './workload.js';

export interface TracingResult {
  runsPerSide: number;
  /** Per-step overhead with no tracer provider (every span a no-op), and with spans exported over OTLP/HTTP. */
  off: Summary;
  on: Summary;
  /** Spans the local OTLP receiver was sent while tracing was on. */
  spansExported: number;
}

/** A local OTLP/HTTP receiver that counts the spans it is sent (a collector's place). */
async function sink(): Promise<{ url: string; spans: () => number; close: () => Promise<void> }> {
  let spans = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceSpans?: Array<{ scopeSpans: Array<{ spans: unknown[] }> }> };
        for (const r of body.resourceSpans ?? []) for (const s of r.scopeSpans) spans += s.spans.length;
      } catch {
        // not JSON: not counted
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/traces`,
    spans: () => spans,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/**
 * Per-step overhead with tracing off and on, in alternation (off, on, off, on...) so machine
 * drift falls on both sides alike.
 */
export async function tracingCost(engine: Engine, rounds: number, runsPerRound: number, timeoutMs: number): Promise<TracingResult> {
  const receiver = await sink();
  const off: number[] = [];
  const on: number[] = [];
  const timed = async (into: number[]) => {
    for (let i = 0; i < runsPerRound; i++) {
      const t0 = performance.now();
      const run = await engine.startRun({ graph: BENCH_GRAPH, input: {} });
      const done = await engine.waitForRun(run.id, timeoutMs);
      if (done.status !== 'succeeded') throw new Error(`run ${run.id} ended ${done.status}`);
      into.push((performance.now() - t0) / BENCH_STEPS);
    }
  };
  try {
    for (let r = 0; r < rounds; r++) {
      await timed(off);
      const tracing = tracingTo(receiver.url);
      try {
        await timed(on);
      } finally {
        await tracing.shutdown();
      }
    }
  } finally {
    await receiver.close();
  }
  return { runsPerSide: off.length, off: summarize(off), on: summarize(on), spansExported: receiver.spans() };
}
