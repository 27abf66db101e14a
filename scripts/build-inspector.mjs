#!/usr/bin/env node
// Builds the inspector (inspector/build/, what `ao serve` serves at `/`) only when its sources
// changed since the last successful build: `pnpm start` runs this instead of an unconditional
// `vite build` (about 30 s on two cores). The build directory holds a stamp with the hash of
// everything the build reads (stamp.mjs); a matching stamp skips vite. `--force` builds anyway.
import { spawn } from 'node:child_process';
import process from 'node:process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureBuilt, hashInputs } from './stamp.mjs';

const ROOT = join(import.meta.dirname, '..');

/**
 * What the build reads besides node_modules: the app's sources, its config files and manifest, and
 * the lockfile (which pins every dependency vite bundles).
 * @param {string} root the repository (holds `inspector/` and `pnpm-lock.yaml`)
 */
export function inspectorInputs(root) {
  const dir = join(root, 'inspector');
  return {
    trees: [join(dir, 'src')],
    files: ['package.json', 'svelte.config.js', 'vite.config.ts', 'tsconfig.json'].map((f) => join(dir, f)).concat(join(root, 'pnpm-lock.yaml')),
  };
}

/**
 * `vite build` of the inspector, in place (inspector/build/), failing with vite's exit code.
 * @param {string} root
 * @returns {Promise<void>}
 */
export function viteBuild(root) {
  const dir = join(root, 'inspector');
  const vite = join(dir, 'node_modules', 'vite', 'bin', 'vite.js');
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [vite, 'build', '--logLevel', 'warn'], { cwd: dir, stdio: 'inherit' });
    p.on('error', reject);
    p.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`vite build failed (${signal ?? `exit code ${code}`})`))));
  });
}

/**
 * Builds the inspector into `<root>/inspector/build/` unless that build is current.
 * @param {string} root
 * @param {boolean} [force] build anyway
 * @returns {Promise<string>} the build directory
 */
export async function ensureInspector(root, force = false) {
  const hash = await hashInputs(root, inspectorInputs(root));
  const outDir = join(root, 'inspector', 'build');
  const build = () => {
    process.stderr.write('building the inspector (inspector/build/ is missing or older than its sources)\n');
    return viteBuild(root);
  };
  await ensureBuilt({ hash, outDir, build, force });
  return outDir;
}

async function main() {
  await ensureInspector(ROOT, process.argv.includes('--force'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
