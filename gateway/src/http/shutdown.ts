import type { FastifyInstance } from 'fastify';

/**
 * SIGTERM, part one (the gateway's): stop taking runs (POST /runs and replays answer 503
 * AO_SHUTTING_DOWN, /health says `draining` with a 503 so a load balancer looks elsewhere), let the
 * runs this node hosts go on for up to `graceMs`, then close the HTTP server and its streams.
 * Reads keep being answered meanwhile. Part two is the engine's `shutdown()` (`Runtime.close`):
 * what still runs is stopped at its last committed step (every effect already made is in the
 * log and is read back, never made again) and its lease released, so another node resumes it at
 * once rather than a lease later.
 */
export async function drainAndClose(
  app: FastifyInstance,
  engine: { activeRuns(): string[] },
  graceMs: number = app.gate.limits.shutdownGraceMs,
): Promise<{ finished: number; left: number; waitedMs: number }> {
  app.gate.drain();
  const t0 = Date.now();
  const before = engine.activeRuns().length;
  while (engine.activeRuns().length && Date.now() - t0 < graceMs) await new Promise((r) => setTimeout(r, 50));
  const left = engine.activeRuns().length;
  await app.close();
  return { finished: Math.max(0, before - left), left, waitedMs: Date.now() - t0 };
}
