#!/usr/bin/env node
// `pnpm ao` and `pnpm start`: the CLI from dist/ao.mjs, built by scripts/build-cli.mjs when the
// workspace's sources changed since the last build. With AO_GRAPHS, the user's modules import
// @ao/graphs and @ao/runtime, whose exports are TypeScript: the CLI then runs from source through
// tsx, so those modules and the CLI share one copy of each package (a graph built with another
// copy's builder would not be recognised).
import process from 'node:process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureBuilt, hashInputs } from './stamp.mjs';

const ROOT = join(import.meta.dirname, '..');

if (process.env.AO_GRAPHS) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(join(ROOT, 'gateway', 'src', 'cli', 'main.ts')).href);
} else {
  const outDir = join(ROOT, 'dist');
  const outfile = join(outDir, 'ao.mjs');
  const { cliInputs, buildCli } = await import('./build-cli.mjs');
  await ensureBuilt({ hash: await hashInputs(ROOT, cliInputs(ROOT)), outDir, build: () => buildCli(ROOT, outfile) });
  await import(pathToFileURL(outfile).href);
}
