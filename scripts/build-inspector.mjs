#!/usr/bin/env node
// Builds the inspector (inspector/build/, what `ao serve` serves at `/`) only when its sources
// changed since the last successful build: `pnpm start` runs this instead of an unconditional
// `vite build` (about 30 s on two cores). The build directory holds a stamp with the hash of
// everything the build reads; a matching stamp skips vite. `--force` builds anyway.
import { spawn } from 'node:child_process';
import process from 'node:process';
import { createHash } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { pathToFileURL } from 'node:url';

const ROOT = join(import.meta.dirname, '..');

/** The stamp's name inside the build directory. */
export const STAMP = '.ao-build-hash';

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
 * A hash of the inputs' paths (relative to `root`, so a moved checkout keeps its build) and contents.
 * A listed file that is missing counts as missing, not as an error.
 * @param {string} root
 * @param {{ trees: string[], files: string[] }} inputs
 * @returns {Promise<string>}
 */
export async function hashInputs(root, inputs) {
  const files = [...inputs.files];
  for (const tree of inputs.trees) {
    const entries = await readdir(tree, { recursive: true, withFileTypes: true });
    for (const e of entries) if (e.isFile()) files.push(join(e.parentPath, e.name));
  }
  const rel = (/** @type {string} */ f) => relative(root, f).split(sep).join('/');
  files.sort((a, b) => (rel(a) < rel(b) ? -1 : rel(a) > rel(b) ? 1 : 0));
  const h = createHash('sha256');
  for (const f of files) {
    const body = await readFile(f).catch((/** @type {NodeJS.ErrnoException} */ e) => {
      if (e.code === 'ENOENT') return null;
      throw e;
    });
    h.update(`${rel(f)}\0${body === null ? 'missing' : body.length}\0`);
    if (body) h.update(body);
  }
  return h.digest('hex');
}

/**
 * Runs `build` unless `outDir` holds a stamp with `hash`. The old stamp goes first and the new one
 * is written only after `build` resolves, so a failed or interrupted build is rebuilt next time.
 * @param {{ hash: string, outDir: string, build: () => Promise<void>, force?: boolean }} o
 * @returns {Promise<'fresh' | 'built'>} `fresh`: the build was current and nothing ran
 */
export async function ensureBuilt({ hash, outDir, build, force = false }) {
  const stamp = join(outDir, STAMP);
  const current = await readFile(stamp, 'utf8').catch(() => undefined);
  if (!force && current?.trim() === hash) return 'fresh';
  await rm(stamp, { force: true });
  await build();
  await writeFile(stamp, `${hash}\n`);
  return 'built';
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

async function main() {
  const force = process.argv.includes('--force');
  const hash = await hashInputs(ROOT, inspectorInputs(ROOT));
  const outDir = join(ROOT, 'inspector', 'build');
  const build = () => {
    process.stderr.write('building the inspector (inspector/build/ is missing or older than its sources)\n');
    return viteBuild(ROOT);
  };
  await ensureBuilt({ hash, outDir, build, force });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  });
}
