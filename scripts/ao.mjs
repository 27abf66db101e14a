#!/usr/bin/env node
// `pnpm ao` and `pnpm start`: the CLI from dist/cli-<hash>/ao.mjs, built by scripts/build-cli.mjs
// when no build of the workspace's current sources exists. With AO_GRAPHS, the user's modules
// import @ao/graphs and @ao/runtime, whose exports are TypeScript: the CLI then runs from source
// through tsx, so those modules and the CLI share one copy of each package (a graph built with
// another copy's builder would not be recognised).
import { existsSync } from 'node:fs';
import process from 'node:process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { hashInputs, STAMP } from './stamp.mjs';
import { buildCli, buildDir, cliInputs, ENTRY, pruneBuilds } from './build-cli.mjs';

const ROOT = join(import.meta.dirname, '..');

if (process.env.AO_GRAPHS) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(join(ROOT, 'gateway', 'src', 'cli', 'main.ts')).href);
} else {
  const hash = await hashInputs(ROOT, cliInputs(ROOT));
  const distDir = join(ROOT, 'dist');
  const dir = buildDir(distDir, hash);
  if (!existsSync(join(dir, STAMP))) {
    await buildCli(ROOT, dir, hash);
    await pruneBuilds(distDir, dir);
  }
  await import(pathToFileURL(join(dir, ENTRY)).href);
}
