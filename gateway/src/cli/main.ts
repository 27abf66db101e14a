#!/usr/bin/env node
import { isAoError } from '@ao/graphs';
import { loadConfig } from '@ao/runtime';
import { parseCommandLine } from './args.js';
import type { Values } from './args.js';
import { ApiError } from './client.js';
import type { Client } from './client.js';
import { connect } from './connect.js';
import { exportRun, importRun } from './file-commands.js';
import { out } from './output.js';
import { diff, graphs, runs, show, waiting } from './query-commands.js';
import { cancel, replay, run, signal, watch } from './run-commands.js';
import { node, serve } from './server.js';
import { USAGE } from './usage.js';

// The engine (../node.js), the HTTP app, the stores and what they load (fastify, PGlite, pg, NATS,
// OpenTelemetry, the MCP SDK: most of a second of module loading) are imported by the commands
// that use them (connect.ts, server.ts), not here: a command that talks to a running gateway loads
// none of them. The bundle (scripts/build-cli.mjs) splits them into chunks at these `import()`s.

async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'keys') return (await import('./keys.js')).keysCommand(argv.slice(1));
  if (argv[0] === 'verify') return (await import('./verify.js')).verifyCommand(argv.slice(1), out);
  const { values, positionals } = parseCommandLine(argv);
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
    return await dispatch(client, cmd, rest, values);
  } finally {
    await close();
  }
}

/** Runs a command that talks to a gateway (or an embedded engine) through `client`. */
async function dispatch(client: Client, cmd: string, rest: string[], values: Values): Promise<number> {
  switch (cmd) {
    case 'run':
      return await run(client, rest[0], values.input, values.watch);
    case 'runs':
      return await runs(client, values);
    case 'show':
      return await show(client, rest[0], values);
    case 'cancel':
      return await cancel(client, rest[0]);
    case 'watch':
      return await watch(client, rest[0]);
    case 'replay':
      return await replay(client, rest[0], values);
    case 'signal':
      return await signal(client, rest[0], values);
    case 'waiting':
      return await waiting(client, values);
    case 'diff':
      return await diff(client, rest[0], rest[1]);
    case 'export':
      return await exportRun(client, rest[0], values);
    case 'import':
      return await importRun(client, rest[0], values);
    case 'graphs':
      return await graphs(client, rest[0]);
    default:
      out(`unknown command "${cmd}"\n\n${USAGE}`);
      return 2;
  }
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
