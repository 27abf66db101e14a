#!/usr/bin/env node
// The `ao` command of the installed @ao/gateway: the compiled CLI (dist/cli/main.js), no
// TypeScript compiled at start. When AO_GRAPHS names a TypeScript module (a user's graphs and
// tools), tsx is registered first as Node's loader so that module loads; it compiles only
// TypeScript files, and the user's module and the CLI then share the one installed copy of
// @ao/graphs and @ao/runtime (a graph built with another copy's builder would not be recognised).
// In the workspace, scripts/ao.mjs plays this part.
import { join } from 'node:path';
import process from 'node:process';
import { pathToFileURL } from 'node:url';

const typescript = /\.[cm]?tsx?$/;
if ((process.env.AO_GRAPHS ?? '').split(',').some((p) => typescript.test(p.trim()))) {
  const { register } = await import('tsx/esm/api');
  register();
}
// Not a literal specifier: dist/ exists only in a built package (the workspace typechecks this file).
await import(pathToFileURL(join(import.meta.dirname, '..', 'dist', 'cli', 'main.js')).href);
