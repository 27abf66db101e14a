#!/usr/bin/env node
// Builds the packages a user installs (@ao/graphs, @ao/runtime, @ao/actors, @ao/gateway) into each
// one's dist/: JavaScript and .d.ts from `tsc -b tsconfig.build.json`, plus what the compiled code
// finds beside itself: the migrations (runtime/dist/store/drizzle/) and the inspector's build
// (gateway/dist/inspector/, served by `ao serve`). Their `publishConfig` points `exports` and the
// `ao` bin at dist/, so only a packed tarball uses it: the workspace keeps running from src/
// (tests, tsx, the CLI bundle), and nothing here runs at install.
//
// Each package's `prepack` runs this (incremental: tsc skips what is current). `--clean` removes
// dist/ first, so a source deleted since the last build leaves nothing behind (pack-packages.mjs).
import { spawn } from 'node:child_process';
import { cp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { basename, join } from 'node:path';
import process from 'node:process';
import { pathToFileURL } from 'node:url';
import { ensureInspector } from './build-inspector.mjs';
import { STAMP } from './stamp.mjs';

const ROOT = join(import.meta.dirname, '..');

/** The packages built, in dependency order (the order of tsconfig.build.json's references). */
export const PACKAGES = ['graphs', 'runtime', 'actors', 'gateway'];

/**
 * @param {string} root the repository
 * @param {{ clean?: boolean, inspector?: string }} [o] `inspector`: a built inspector to ship
 *   instead of the workspace's (tests: a vite build there would race the browser tests' own)
 * @returns {Promise<void>}
 */
export async function buildPackages(root, o = {}) {
  if (o.clean) for (const p of PACKAGES) await rm(join(root, p, 'dist'), { recursive: true, force: true });
  await tsc(root, ['-b', join(root, 'tsconfig.build.json')]);
  // runtime/src/store/migrations.ts resolves `./drizzle` from its own file.
  const migrations = join(root, 'runtime', 'dist', 'store', 'drizzle');
  await rm(migrations, { recursive: true, force: true });
  await cp(join(root, 'runtime', 'src', 'store', 'drizzle'), migrations, { recursive: true });
  // gateway/src/http/app.ts (INSPECTOR_BUILD) looks for `../inspector` beside the compiled code.
  const inspector = join(root, 'gateway', 'dist', 'inspector');
  await rm(inspector, { recursive: true, force: true });
  await cp(o.inspector ?? (await ensureInspector(root)), inspector, { recursive: true, filter: (f) => basename(f) !== STAMP });
}

/**
 * Runs the workspace's TypeScript compiler, failing with its output.
 * @param {string} root
 * @param {string[]} args
 * @returns {Promise<void>}
 */
function tsc(root, args) {
  const bin = createRequire(join(root, 'package.json')).resolve('typescript/bin/tsc');
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [bin, ...args], { cwd: root, stdio: 'inherit' });
    p.on('error', reject);
    p.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`tsc ${args.join(' ')} failed (${signal ?? `exit code ${code}`})`))));
  });
}

// pack-packages.mjs built them all already and sets AO_PACKAGES_BUILT for the prepacks it causes.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && !process.env.AO_PACKAGES_BUILT) {
  buildPackages(ROOT, { clean: process.argv.includes('--clean') }).catch((e) => {
    process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
