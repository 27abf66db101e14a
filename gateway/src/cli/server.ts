import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { AoError } from '@ao/graphs';
import type { loadConfig } from '@ao/runtime';
import type { Runtime } from '../node.js';
import { ApiError } from './client.js';
import { out } from './output.js';

// The engine (../node.js), the HTTP app and what they load (fastify, PGlite, pg, NATS,
// OpenTelemetry, the MCP SDK) are imported by the commands, not here: the bundle
// (scripts/build-cli.mjs) splits them into chunks at these `import()`s.

/** Where a client on this host reaches a server listening at `addr` (a wildcard host means loopback). */
function reachableUrl(addr: string | AddressInfo | null, host: string): string {
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '[::1]' : host.includes(':') ? `[${host}]` : host;
  return `http://${h}:${port}`;
}

/** Where a node's id came from, for the start-up banner. */
function idNote(rt: Runtime, config: ReturnType<typeof loadConfig>): string {
  if (rt.nodeIdSource === 'configured') return 'AO_NODE_ID';
  if (rt.nodeIdSource === 'data-dir') return `kept in ${join(config.AO_DATA_DIR, 'node-id')}`;
  return 'made for this process: AO_NODE_ID is unset';
}

/**
 * Run until SIGINT or SIGTERM (undefined), or until another process takes this node's id over
 * (the error: the engine has already stopped hosting).
 */
function untilStopped(rt: Runtime): Promise<AoError | undefined> {
  return Promise.race([untilSignal().then(() => undefined), rt.lost]);
}

/** The end of a node whose id was taken over: say so on stderr with the code; the process exits non-zero. */
function lostId(e: AoError): number {
  process.stderr.write(`error ${e.code}: ${e.message}\n`);
  return 1;
}

/** Wait for SIGINT or SIGTERM. */
function untilSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      out(`${sig}: shutting down`);
      resolve();
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}

/** A headless runtime node: it hosts runs (from the cluster's queue with NATS_URL) until stopped. */
export async function node(config: ReturnType<typeof loadConfig>): Promise<number> {
  const { setUpProcessLogging, startRuntime } = await import('../node.js');
  setUpProcessLogging(config);
  const rt = await startRuntime(config, { command: 'ao node' });
  out(
    `agent-orchestrator node ${rt.nodeId} running (id ${idNote(rt, config)}); store: ${rt.engine.storeKind}, bus: ${rt.bus.kind}${config.NATS_URL ? ` (${config.AO_NATS_PREFIX})` : ''}`,
  );
  const lost = await untilStopped(rt);
  await rt.close();
  return lost ? lostId(lost) : 0;
}

/** `ao serve`: the gateway (HTTP API, inspector) and, unless --no-node, a runtime node, until stopped. */
export async function serve(config: ReturnType<typeof loadConfig>, o: { node: boolean }): Promise<number> {
  if (!o.node && !config.NATS_URL)
    throw new ApiError(400, 'AO_CONFIG_INVALID', '--no-node needs NATS_URL: without a cluster queue no node would ever take its runs', 'NATS_URL');
  // --no-node: a passive engine takes no runs from the queue and claims none; it only enqueues.
  // The HTTP app's modules load while the store opens (PGlite's start awaits its WebAssembly).
  const http = Promise.all([import('../http/app.js'), import('../http/shutdown.js')]);
  http.catch(() => {}); // awaited below; a failure of startRuntime must not leave it unhandled
  const { setUpProcessLogging, startRuntime } = await import('../node.js');
  setUpProcessLogging(config);
  const rt = await startRuntime(config, { command: 'ao serve', ...(o.node ? {} : { passive: true }) });
  const [{ buildApp, INSPECTOR_BUILD }, { drainAndClose }] = await http;
  const app = await buildApp(rt.engine, {
    logger: config.AO_LOG_LEVEL === 'silent' ? false : { level: config.AO_LOG_LEVEL, base: { pid: process.pid, hostname: hostname(), node: rt.nodeId } },
    llmProvider: rt.llm.provider,
    deltas: rt.providers.deltas,
  });
  const address = await app.listen({ port: config.PORT, host: config.HOST });
  // In the data dir's lock: a CLI started on the same directory talks to this server, whatever its port.
  await rt.publishUrl(reachableUrl(app.server.address(), config.HOST));
  out(`agent-orchestrator listening on ${address.replace('127.0.0.1', 'localhost')}`);
  out(
    `  node: ${rt.nodeId} (${idNote(rt, config)}), store: ${rt.engine.storeKind}${rt.engine.storeKind === 'pglite' ? ` (${config.AO_DATA_DIR})` : ''}, bus: ${rt.bus.kind}, llm: ${rt.llm.provider}${o.node ? '' : ', no runtime node (--no-node)'}`,
  );
  out(
    `  graphs: ${rt.engine.graphs
      .list()
      .map((g) => g.name)
      .join(', ')}`,
  );
  const base = address.replace('127.0.0.1', 'localhost');
  out(`  ${existsSync(join(INSPECTOR_BUILD, 'index.html')) ? `inspector: ${base}/   ` : ''}API docs: ${base}/docs`);
  out(
    `  try: curl -X POST ${address.replace('127.0.0.1', 'localhost')}/runs -H 'Content-Type: application/json' -d '{"graph":"triage","input":{"intent":"refund"}}'`,
  );
  const lost = await untilStopped(rt);
  if (lost) {
    // Its engine has stopped without writing anything more: nothing to drain.
    await app.close();
    await rt.close();
    return lostId(lost);
  }
  // Stop taking runs, give hosted ones AO_SHUTDOWN_GRACE_MS to finish, then stop the rest at their last step and release their leases.
  const drained = await drainAndClose(app, rt.engine);
  if (drained.left) out(`  ${drained.left} runs still going after ${drained.waitedMs} ms: stopped at their last step, leases released for another node`);
  await rt.close();
  return 0;
}
