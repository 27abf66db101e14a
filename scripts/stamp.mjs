// Build once, keyed by a hash of what the build reads: the inspector (scripts/build-inspector.mjs)
// and the CLI (scripts/build-cli.mjs) are rebuilt only when a stamp in their output directory
// no longer matches their inputs.
import { createHash } from 'node:crypto';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

/** The stamp's name inside an output directory. */
export const STAMP = '.ao-build-hash';

/**
 * @typedef {{ trees: string[], files: string[] }} Inputs
 * `trees`: directories read whole (recursively); `files`: single files, which may be missing.
 */

/**
 * A hash of the inputs' paths (relative to `root`, so a moved checkout keeps its build) and contents.
 * A listed file that is missing counts as missing, not as an error.
 * @param {string} root
 * @param {Inputs} inputs
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
