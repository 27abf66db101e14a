#!/usr/bin/env node
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { hostname } from 'node:os';
import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isAoError } from '@ao/graphs';
import type { AoError } from '@ao/graphs';
import { DataDirLock, dataDirLocked, loadConfig, parseRunFile, RUN_STATUSES, TERMINAL_STATUSES } from '@ao/runtime';
import type { RunStatus } from '@ao/runtime';
import type { Runtime } from '../node.js';
import { ApiError, HttpClient } from './client.js';
import type { Client, ReplayRequest } from './client.js';
import type { RunViewT } from '../http/views.js';
import { graphDetailLines, graphsList, runLines, runsTable } from './format.js';
import { watchRun } from './watch.js';
import { parseInstant } from './when.js';

/**
 * What `--id` accepts: the start of a run id (the store's `RUN_ID_PREFIX`). Written here, not
 * imported: importing it from the store's module put the store's chunk (PGlite, drizzle, pg) among
 * the modules every command loads (scripts/ao.test.ts).
 */
const ID_PREFIX = /^[0-9a-fA-F-]{1,36}$/;

// The engine (../node.js), the HTTP app, the stores and what they load (fastify, PGlite, pg, NATS,
// OpenTelemetry, the MCP SDK: most of a second of module loading) are imported by the commands
// that use them, below, not here: a command that talks to a running gateway loads none of them.
// The bundle (scripts/build-cli.mjs) splits them into chunks at these `import()`s.

const USAGE = `ao — agent-orchestrator

Usage:
  ao serve [--port N] [--host H] [--no-node]
                                            gateway + runtime node (+ inspector) on :4000;
                                            --no-node: a gateway only (needs NATS_URL: nodes take its runs)
  ao node                                   a headless runtime node (NATS_URL: it pulls runs and node tasks from the cluster)
  ao run <graph> [--input JSON] [--watch]   start a run; --watch follows its nodes live
  ao runs [--status S] [--graph G] [--since 24h|DATE] [--until DATE] [--id PREFIX] [--limit N]
                                            runs, newest first, searched by status, graph, creation time, id prefix
  ao show <run-id> [--events] [--json]      a run's status, times, usage, nodes and output; --json: the raw run
  ao watch <run-id>                         follow a run (running or finished) as run --watch prints it; exit code:
                                            0 succeeded, 1 failed, 3 budget_exceeded, 4 cancelled, 5 waiting for a person
  ao cancel <run-id>
  ao replay <run-id> --from-step N [--recorded | --lenient] [--overrides JSON] [--watch]
                                            replay (or, with --overrides, fork) a run from a checkpoint
  ao diff <run-a> <run-b>                   where two runs first differ, and their node outputs
  ao export <run-id> [-o FILE] [--no-checkpoints]
                                            a finished run as one JSON file (format ao-run, version 1): run,
                                            every envelope (answers to waits included), checkpoints
  ao import <FILE> [--as ID]                load a run file as a run (shown, replayed, diffed like any); --as: under
                                            a new id (its replay against this checkout must reproduce it)
  ao waiting                                runs waiting for a person, and what they wait for
  ao signal <run-id> --node N (--approve | --reject | --payload JSON) [--comment C] [--wait ID] [--watch]
                                            answer what a run waits for (an approval, an agent's question)
  ao graphs [<name>]                        every graph's edges; with a name, its nodes and input fields
  ao verify [--since 24h] [--graph G] [--status S] [--limit N] [--json] [--junit FILE]
  ao verify <FILE|DIR>... [--json] [--junit FILE]
                                            replay finished runs of the store, or run files, against this
                                            checkout (recorded, in process, nothing written); exit code 0
                                            only if none diverged
  ao keys create --tenant T [--read-only] [--name N] | keys list | keys revoke <id>
                                            API keys (written to the store; the first one turns auth on)

A <run-id> is a run's id or a unique prefix of it of at least 8 characters (\`ao show 3f2a9c1e\`).

run/runs/show/graphs/export/import talk to the gateway at AO_URL; without it, to the \`ao serve\` that holds
AO_DATA_DIR (its address is in the directory's lock), else to http://localhost:$PORT; when none
answers they open the store themselves (embedded mode).`;

/**
 * A reader that went away (\`ao show <id> | head -1\`) is not an error: what it did not read is
 * dropped, and the command finishes (a run it hosts included) and exits as it would have.
 */
let stdoutGone = false;
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code !== 'EPIPE') throw e;
  stdoutGone = true;
});
/** Whether stdout's reader went away: a command that only prints (\`ao watch\`) then stops. */
const readerGone = () => stdoutGone || process.stdout.destroyed;
const out = (s: string) => {
  if (!stdoutGone) process.stdout.write(`${s}\n`);
};

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'keys') return (await import('./keys.js')).keysCommand(argv.slice(1));
  if (argv[0] === 'verify') return (await import('./verify.js')).verifyCommand(argv.slice(1), out);
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      input: { type: 'string', short: 'i' },
      watch: { type: 'boolean', short: 'w', default: false },
      port: { type: 'string' },
      host: { type: 'string' },
      status: { type: 'string' },
      graph: { type: 'string' },
      since: { type: 'string' },
      until: { type: 'string' },
      id: { type: 'string' },
      limit: { type: 'string' },
      events: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
      url: { type: 'string' },
      'from-step': { type: 'string' },
      recorded: { type: 'boolean', default: false },
      lenient: { type: 'boolean', default: false },
      overrides: { type: 'string' },
      node: { type: 'string' },
      wait: { type: 'string' },
      payload: { type: 'string' },
      approve: { type: 'boolean', default: false },
      reject: { type: 'boolean', default: false },
      comment: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
      'no-node': { type: 'boolean', default: false },
      output: { type: 'string', short: 'o' },
      'no-checkpoints': { type: 'boolean', default: false },
      as: { type: 'string' },
    },
  });
  const [cmd, ...rest] = positionals;
  if (values.help || !cmd) {
    out(USAGE);
    return cmd || values.help ? 0 : 2;
  }
  const config = loadConfig({
    ...process.env,
    ...(values.port ? { PORT: values.port } : {}),
    ...(values.host ? { HOST: values.host } : {}),
  });

  if (cmd === 'serve') return serve(config, { node: !values['no-node'] });
  if (cmd === 'node') return node(config);

  const { client, close } = await connect(config, cmd, values.url ?? process.env.AO_URL);
  try {
    switch (cmd) {
      case 'run':
        return await run(client, rest[0], values.input, values.watch);
      case 'runs': {
        if (values.status && !RUN_STATUSES.includes(values.status as RunStatus)) throw new ApiError(400, 'AO_VALIDATION', `--status must be one of ${RUN_STATUSES.join(', ')}`, 'status');
        if (values.id !== undefined && !ID_PREFIX.test(values.id)) throw new ApiError(400, 'AO_VALIDATION', '--id must be the start of a run id (hex digits and dashes)', 'id');
        const now = Date.now();
        const runs = await client.listRuns({
          ...(values.status ? { status: values.status as RunStatus } : {}),
          ...(values.graph ? { graph: values.graph } : {}),
          ...(values.since !== undefined ? { since: parseInstant(values.since, 'since', now) } : {}),
          ...(values.until !== undefined ? { until: parseInstant(values.until, 'until', now) } : {}),
          ...(values.id !== undefined ? { q: values.id } : {}),
          limit: values.limit ? Number(values.limit) : 20,
        });
        for (const l of runsTable(runs, Date.now())) out(l);
        return 0;
      }
      case 'show': {
        if (!rest[0]) throw new ApiError(400, 'AO_VALIDATION', 'usage: ao show <run-id>', 'id');
        const r = await client.getRun(rest[0]);
        if (values.json) out(JSON.stringify(r, null, 2));
        else {
          // The graph's node order, when the graph is still registered.
          const order = await client.graph(r.graph).then((g) => g.nodes.map((n) => n.id), () => []);
          for (const l of runLines(r, Date.now(), order)) out(l);
        }
        if (values.events) {
          if (!values.json) out('\nevents');
          for (let after = 0, page = await client.events(r.id, 0); page.length; after = page.at(-1)!.seq, page = await client.events(r.id, after)) {
            for (const e of page) out(`${String(e.seq).padStart(4)} ${e.type.padEnd(22)} ${e.from} -> ${e.to}`);
          }
        }
        return 0;
      }
      case 'cancel': {
        if (!rest[0]) throw new ApiError(400, 'AO_VALIDATION', 'usage: ao cancel <run-id>', 'id');
        const r = await client.cancel(rest[0]);
        out(`run ${r.id} ${r.status}`);
        return 0;
      }
      case 'watch':
        return await watch(client, rest[0]);
      case 'replay':
        return await replay(client, rest[0], values);
      case 'signal':
        return await signal(client, rest[0], values);
      case 'waiting': {
        const runs = await client.listRuns({ status: 'waiting', limit: values.limit ? Number(values.limit) : 50 });
        if (!runs.length) out('no run waits for a person');
        for (const r of runs) {
          if (!r.waits.length) out(`${r.id}  ${r.graph.padEnd(16)} parked: ${r.error?.code ?? ''} ${r.error?.message ?? ''}`);
          for (const w of r.waits) out(`${r.id}  ${r.graph.padEnd(16)} ${w.node}: ${w.prompt}  (${w.kind}, wait ${w.id}, since ${w.since})`);
        }
        return 0;
      }
      case 'diff': {
        if (!rest[0] || !rest[1]) throw new ApiError(400, 'AO_VALIDATION', 'usage: ao diff <run-a> <run-b>', 'id');
        const d = await client.diff(rest[0], rest[1]);
        out(d.identical ? `identical: ${d.events.a} decisions each` : `first difference at decision ${d.first!.index + 1} of ${d.a}, actor ${d.first!.actor}:`);
        if (d.first) {
          out(`  ${d.a}: ${d.first.a ? `${d.first.a.type} -> ${d.first.a.to}` : '(nothing)'}`);
          out(`  ${d.b}: ${d.first.b ? `${d.first.b.type} -> ${d.first.b.to}` : '(nothing)'}`);
          for (const l of d.first.diff) out(`    ${l}`);
        }
        for (const n of d.nodes) out(`node ${n.node}: output differs\n  a: ${JSON.stringify(n.a)?.slice(0, 300)}\n  b: ${JSON.stringify(n.b)?.slice(0, 300)}`);
        return d.identical ? 0 : 1;
      }
      case 'export': {
        if (!rest[0]) throw new ApiError(400, 'AO_VALIDATION', 'usage: ao export <run-id> [-o FILE] [--no-checkpoints]', 'id');
        const file = await client.exportRun(rest[0], { checkpoints: !values['no-checkpoints'] });
        const text = `${JSON.stringify(file, null, 1)}\n`;
        if (!values.output || values.output === '-') {
          if (!stdoutGone) process.stdout.write(text);
          return 0;
        }
        await writeFile(values.output, text);
        out(`exported run ${file.run.id} (${file.run.graph}, ${file.run.status}, ${file.events.length} events, ${file.checkpoints.length} checkpoints) to ${values.output}`);
        return 0;
      }
      case 'import': {
        if (!rest[0]) throw new ApiError(400, 'AO_VALIDATION', 'usage: ao import <FILE> [--as ID]', 'file');
        const path = rest[0];
        const text = await (path === '-' ? Promise.resolve(readFileSync(0, 'utf8')) : readFile(path, 'utf8')).catch((e: Error) => {
          throw new ApiError(400, 'AO_VALIDATION', `cannot read ${path}: ${e.message}`, 'file');
        });
        const file = parseRunFile(text, path);
        const r = await client.importRun(file, values.as !== undefined ? { as: values.as } : {});
        out(`imported run ${r.id} (${r.graph}, ${r.status}, ${r.events} events, ${r.checkpoints} checkpoints) via ${client.where}`);
        return 0;
      }
      case 'graphs': {
        const lines = rest[0] ? graphDetailLines(await client.graph(rest[0])) : graphsList(await client.graphs());
        for (const l of lines) out(l);
        return 0;
      }
      default:
        out(`unknown command "${cmd}"\n\n${USAGE}`);
        return 2;
    }
  } finally {
    await close();
  }
}

/**
 * The gateway a command talks to. Named (`--url`, AO_URL): that one. Embedded store: the server
 * that holds AO_DATA_DIR, at the address in its lock (whatever its port); a directory held by a
 * process without one (\`ao node\`, another CLI) is AO_DATA_DIR_LOCKED, never opened. Otherwise the
 * gateway on the default port, else an engine in this process on the store.
 */
async function connect(config: ReturnType<typeof loadConfig>, cmd: string, named: string | undefined): Promise<{ client: Client; close: () => Promise<void> }> {
  const none = async () => {};
  if (named) {
    if (await HttpClient.reachable(named)) return { client: new HttpClient(named), close: none };
    throw new Error(`no gateway answers at ${named}`);
  }
  for (let attempt = 0; ; attempt++) {
    if (!config.DATABASE_URL) {
      const url = await serverOfDataDir(config.AO_DATA_DIR);
      if (url) return { client: new HttpClient(url), close: none };
    }
    const fallback = `http://localhost:${config.PORT}`;
    if (await HttpClient.reachable(fallback)) return { client: new HttpClient(fallback), close: none };
    try {
      // Its own node id: the CLI must never take over runs a server with the configured id hosts.
      // Passive: it hosts the run it starts (`ao run`) and takes over nothing else.
      const [{ startRuntime }, { EmbeddedClient }] = await Promise.all([import('../node.js'), import('./embedded-client.js')]);
      const rt = await startRuntime({ ...config, AO_LOG_LEVEL: 'warn', AO_NODE_ID: `cli-${process.pid}` }, { passive: true, command: `ao ${cmd}` });
      return { client: new EmbeddedClient(rt.engine, `embedded (${rt.store.kind})`), close: rt.close };
    } catch (e) {
      // A server took the directory between our look and our try: talk to it (once).
      if (isAoError(e) && e.code === 'AO_DATA_DIR_LOCKED' && attempt === 0) continue;
      throw e;
    }
  }
}

/**
 * The address of the live \`ao serve\` holding the data directory, once it listens; undefined when
 * nobody holds it (or its holder is gone). A holder without an address fails AO_DATA_DIR_LOCKED:
 * the CLI does not open a directory another process holds.
 */
async function serverOfDataDir(dir: string): Promise<string | undefined> {
  // A server holds the directory from before its store opens until it listens: give it that long.
  const end = Date.now() + 60_000;
  for (;;) {
    const seen = await DataDirLock.inspect(dir);
    if (!seen || seen.state === 'gone') return undefined;
    const h = seen.holder;
    if (h?.url && (await HttpClient.reachable(h.url))) return h.url;
    const starting = h?.command === 'ao serve' && seen.state === 'alive';
    if (!starting || Date.now() > end) throw dataDirLocked(dir, h, h?.url ? ' (its HTTP API does not answer)' : '');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `ao signal`: answer a wait; embedded, follow the run until it ends or waits again. */
async function signal(client: Client, id: string | undefined, v: { node?: string | undefined; wait?: string | undefined; payload?: string | undefined; approve?: boolean | undefined; reject?: boolean | undefined; comment?: string | undefined; watch?: boolean | undefined }): Promise<number> {
  const usage = 'usage: ao signal <run-id> --node N (--approve | --reject | --payload JSON) [--comment C] [--wait ID]';
  if (!id || !v.node) throw new ApiError(400, 'AO_VALIDATION', usage, id ? 'node' : 'id');
  if ([v.approve, v.reject, v.payload !== undefined].filter(Boolean).length !== 1) throw new ApiError(400, 'AO_VALIDATION', `give exactly one of --approve, --reject, --payload; ${usage}`, 'payload');
  let payload: unknown;
  if (v.payload !== undefined) {
    try {
      payload = JSON.parse(v.payload);
    } catch (e) {
      throw new ApiError(400, 'AO_BAD_JSON', `--payload is not valid JSON: ${(e as Error).message}`, 'payload');
    }
  } else {
    payload = { approved: v.approve === true, ...(v.comment !== undefined ? { comment: v.comment } : {}) };
  }
  const r = await client.signal(id, { node: v.node, ...(v.wait ? { waitId: v.wait } : {}), payload });
  out(r.duplicate ? `run ${id}: that wait was already answered (${r.signal}); nothing changed` : `run ${id}: answer ${r.signal} stored${r.wait ? ` for wait ${r.wait}` : ' (before the wait: the next one takes it)'} via ${client.where}`);
  if (!v.watch && client instanceof HttpClient) return 0;
  const status = await watchRun(client, r.id, v.watch ? out : () => {});
  out(`status: ${status}`);
  return status === 'succeeded' || status === 'waiting' ? 0 : 1;
}

async function run(client: Client, graph: string | undefined, inputJson: string | undefined, watch: boolean): Promise<number> {
  if (!graph) throw new ApiError(400, 'AO_VALIDATION', 'usage: ao run <graph> --input <json>', 'graph');
  let input: unknown = {};
  if (inputJson !== undefined) {
    try {
      input = JSON.parse(inputJson);
    } catch (e) {
      throw new ApiError(400, 'AO_BAD_JSON', `--input is not valid JSON: ${(e as Error).message}`, 'input');
    }
  }
  const started = await client.startRun({ graph, input });
  out(`run ${started.id} (${graph}) ${started.status} via ${client.where}`);
  // Embedded, the run lives in this process: follow it to the end even without --watch.
  if (!watch && client instanceof HttpClient) return 0;
  const status = await watchRun(client, started.id, watch ? out : () => {});
  const final = await client.getRun(started.id);
  if (final.output !== null && final.output !== undefined) out(`output:\n${JSON.stringify(final.output, null, 2)}`);
  out(`status: ${status}`);
  if (status === 'waiting') {
    for (const w of final.waits) out(`waits for a person at ${w.node}: ${w.prompt}\n  answer: ao signal ${final.id} --node ${w.node} ${w.kind === 'approval' ? '--approve (or --reject)' : `--payload '{"answer": "..."}'`}`);
    return 0;
  }
  return status === 'succeeded' ? 0 : 1;
}

/** `ao watch`'s exit code for the status a run ended (or parked) in. */
const WATCH_EXIT: Readonly<Record<string, number>> = { succeeded: 0, failed: 1, budget_exceeded: 3, cancelled: 4, waiting: 5 };

/**
 * \`ao watch <id>\`: follow a run, running or finished, from its first event, printing what
 * \`ao run --watch\` prints, until it ends; exit with its status (WATCH_EXIT). A run parked waiting
 * for a person is followed on through a server (it may be answered from anywhere); embedded on
 * PGlite nobody else can answer it, so the watch ends there (5). A reader that goes away
 * (\`| head\`) ends it quietly.
 */
async function watch(client: Client, ref: string | undefined): Promise<number> {
  if (!ref) throw new ApiError(400, 'AO_VALIDATION', 'usage: ao watch <run-id>', 'id');
  const run = await client.getRun(ref);
  out(`run ${run.id} (${run.graph}) ${run.status} via ${client.where}`);
  // Embedded on PGlite this process holds the data directory: no server can be moving the run.
  const alone = client.where === 'embedded (pglite)';
  const parked = run.status === 'waiting' && run.owner === null;
  if (alone && !TERMINAL_STATUSES.has(run.status) && !parked) {
    throw new ApiError(503, 'AO_RUN_INTERRUPTED', `run ${run.id} is ${run.status} but no process hosts it (the server that ran it stopped): \`ao serve\` on this data directory resumes it, and \`ao watch\` then follows it`, 'id');
  }
  const answers = (r: RunViewT) => r.waits.map((w) => `waits for a person at ${w.node}: ${w.prompt}\n  answer: ao signal ${r.id} --node ${w.node} ${w.kind === 'approval' ? '--approve (or --reject)' : `--payload '{"answer": "..."}'`}`);
  const status = await watchRun(client, run.id, out, { stop: readerGone, throughWaits: !alone, onParked: (r) => answers(r).forEach((l) => out(l)) });
  if (readerGone()) return 0;
  const final = await client.getRun(run.id);
  if (final.output !== null && final.output !== undefined) out(`output:\n${JSON.stringify(final.output, null, 2)}`);
  out(`status: ${status}`);
  if (status === 'waiting') answers(final).forEach((l) => out(l));
  return WATCH_EXIT[status] ?? 1;
}

async function replay(client: Client, id: string | undefined, v: { 'from-step'?: string | undefined; recorded?: boolean | undefined; lenient?: boolean | undefined; overrides?: string | undefined; watch?: boolean | undefined }): Promise<number> {
  if (!id || v['from-step'] === undefined) throw new ApiError(400, 'AO_VALIDATION', 'usage: ao replay <run-id> --from-step N [--recorded | --lenient]', 'fromStep');
  const fromStep = Number(v['from-step']);
  if (!Number.isInteger(fromStep) || fromStep < 0) throw new ApiError(400, 'AO_VALIDATION', '--from-step must be a whole number >= 0', 'fromStep');
  if (v.recorded && v.lenient) throw new ApiError(400, 'AO_VALIDATION', 'choose one of --recorded and --lenient', 'mode');
  let overrides: ReplayRequest['overrides'];
  if (v.overrides !== undefined) {
    try {
      overrides = JSON.parse(v.overrides) as ReplayRequest['overrides'];
    } catch (e) {
      throw new ApiError(400, 'AO_BAD_JSON', `--overrides is not valid JSON: ${(e as Error).message}`, 'overrides');
    }
  }
  const mode = v.recorded ? 'recorded' : v.lenient ? 'lenient' : 'live';
  const started = await client.replay(id, { fromStep, mode, ...(overrides ? { overrides } : {}) });
  out(`run ${started.id} replays ${id} from step ${fromStep} (${mode}${overrides ? ', fork' : ''}) via ${client.where}`);
  if (!v.watch && client instanceof HttpClient) return 0;
  const status = await watchRun(client, started.id, v.watch ? out : () => {});
  const final = await client.getRun(started.id);
  const d = final.replay?.divergence;
  if (d) {
    out(`diverged at step ${d.step}, actor ${d.actor}:`);
    out(`  original: ${d.expected ? `${d.expected.type} -> ${d.expected.to}` : '(nothing)'}`);
    out(`  replay:   ${d.actual ? `${d.actual.type} -> ${d.actual.to}` : '(nothing)'}`);
    for (const l of d.diff) out(`    ${l}`);
  }
  out(`status: ${status}`);
  return status === 'succeeded' ? 0 : 1;
}

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
async function node(config: ReturnType<typeof loadConfig>): Promise<number> {
  const { setUpProcessLogging, startRuntime } = await import('../node.js');
  setUpProcessLogging(config);
  const rt = await startRuntime(config, { command: 'ao node' });
  out(`agent-orchestrator node ${rt.nodeId} running (id ${idNote(rt, config)}); store: ${rt.store.kind}, bus: ${rt.bus.kind}${config.NATS_URL ? ` (${config.AO_NATS_PREFIX})` : ''}`);
  const lost = await untilStopped(rt);
  await rt.close();
  return lost ? lostId(lost) : 0;
}

async function serve(config: ReturnType<typeof loadConfig>, o: { node: boolean }): Promise<number> {
  if (!o.node && !config.NATS_URL) throw new ApiError(400, 'AO_CONFIG_INVALID', '--no-node needs NATS_URL: without a cluster queue no node would ever take its runs', 'NATS_URL');
  // --no-node: a passive engine takes no runs from the queue and claims none; it only enqueues.
  // The HTTP app's modules load while the store opens (PGlite's start awaits its WebAssembly).
  const http = Promise.all([import('../http/app.js'), import('../http/shutdown.js')]);
  http.catch(() => {}); // awaited below; a failure of startRuntime must not leave it unhandled
  const { setUpProcessLogging, startRuntime } = await import('../node.js');
  setUpProcessLogging(config);
  const rt = await startRuntime(config, { command: 'ao serve', ...(o.node ? {} : { passive: true }) });
  const [{ buildApp, INSPECTOR_BUILD }, { drainAndClose }] = await http;
  const app = await buildApp(rt.engine, { logger: config.AO_LOG_LEVEL === 'silent' ? false : { level: config.AO_LOG_LEVEL, base: { pid: process.pid, hostname: hostname(), node: rt.nodeId } }, llmProvider: rt.llm.provider, deltas: rt.providers.deltas });
  const address = await app.listen({ port: config.PORT, host: config.HOST });
  // In the data dir's lock: a CLI started on the same directory talks to this server, whatever its port.
  await rt.publishUrl(reachableUrl(app.server.address(), config.HOST));
  out(`agent-orchestrator listening on ${address.replace('127.0.0.1', 'localhost')}`);
  out(`  node: ${rt.nodeId} (${idNote(rt, config)}), store: ${rt.store.kind}${rt.store.kind === 'pglite' ? ` (${config.AO_DATA_DIR})` : ''}, bus: ${rt.bus.kind}, llm: ${rt.llm.provider}${o.node ? '' : ', no runtime node (--no-node)'}`);
  out(`  graphs: ${rt.engine.graphs.list().map((g) => g.name).join(', ')}`);
  const base = address.replace('127.0.0.1', 'localhost');
  out(`  ${existsSync(join(INSPECTOR_BUILD, 'index.html')) ? `inspector: ${base}/   ` : ''}API docs: ${base}/docs`);
  out(`  try: curl -X POST ${address.replace('127.0.0.1', 'localhost')}/runs -H 'Content-Type: application/json' -d '{"graph":"triage","input":{"intent":"refund"}}'`);
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    if (e instanceof ApiError || isAoError(e)) {
      const f = (e as { field?: string }).field;
      process.stderr.write(`error ${(e as { code: string }).code}: ${e.message}${f ? ` (field: ${f})` : ''}\n`);
      process.exit(1);
    }
    process.stderr.write(`error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
