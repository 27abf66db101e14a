// The `ao` CLI (and `ao serve`) as JavaScript, so a command does not compile the workspace's
// TypeScript through tsx each time it starts (seconds on two cores). esbuild bundles the workspace
// packages (@ao/*) with code splitting: the entry, `ao.mjs`, holds what every command needs, and
// the engine, the HTTP app, the stores and their packages are chunks the commands that use them
// import. Every other package stays an import of the installed file (a path relative to the
// output directory, since pnpm lets each package see only its own dependencies).
//
// Each build is a directory of its own, `dist/cli-<hash of its inputs>/`, written under another
// name and renamed into place whole: a process started from one build finds the chunks it imports
// later in that directory, however many builds happen meanwhile (old ones are pruned, keeping the
// newest few). scripts/ao.mjs builds when the directory for its inputs' hash is missing.
import { readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import process from 'node:process';
import { STAMP } from './stamp.mjs';

/** The entry file's name in a build directory. */
export const ENTRY = 'ao.mjs';
/** Builds kept after a new one (the new one included): a server started from the previous build keeps its chunks. */
export const KEEP_BUILDS = 2;
const PREFIX = 'cli-';
const TMP_PREFIX = '.tmp-cli-';

/**
 * What the bundle is made of: the workspace packages' sources and manifests, the lockfile (which
 * fixes the paths of the installed packages the bundle imports) and this script.
 * @param {string} root the repository
 * @returns {import('./stamp.mjs').Inputs}
 */
export function cliInputs(root) {
  const pkgs = ['graphs', 'runtime', 'actors', 'gateway'];
  return {
    trees: pkgs.map((p) => join(root, p, 'src')),
    files: [...pkgs.map((p) => join(p, 'package.json')), 'package.json', 'pnpm-lock.yaml', 'tsconfig.base.json', 'scripts/build-cli.mjs'].map((f) =>
      join(root, f),
    ),
  };
}

/**
 * The build directory for a hash of the inputs (short: it appears in every chunk's path).
 * @param {string} distDir usually `<root>/dist`
 * @param {string} hash
 */
export const buildDir = (distDir, hash) => join(distDir, `${PREFIX}${hash.slice(0, 16)}`);

/** @param {string} from @param {string} to */
const relativeSpecifier = (from, to) => `./${relative(from, to).split(sep).join('/')}`;

/**
 * Bundles gateway/src/cli/main.ts into `outDir` (entry `ao.mjs` and its chunks). It is built in a
 * sibling directory and renamed into place with its stamp inside, so a command never sees half a
 * build; when another process renamed its own build there first, that one stands (same inputs).
 * @param {string} root
 * @param {string} outDir a directory under `<root>/dist`, named by the inputs' hash
 * @param {string} hash written to the stamp
 * @returns {Promise<void>}
 */
export async function buildCli(root, outDir, hash) {
  const parent = join(outDir, '..');
  const tmp = join(parent, `${TMP_PREFIX}${process.pid}-${Date.now()}`);
  // Loaded here, not at the top: a command whose build is current never loads esbuild.
  const { build } = await import('esbuild');
  try {
    await build({
      entryPoints: { ao: join(root, 'gateway', 'src', 'cli', 'main.ts') },
      outdir: tmp,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      splitting: true,
      platform: 'node',
      format: 'esm',
      target: 'node20.19',
      // Resolve installed packages as Node does (not the `module` field or condition bundlers use).
      mainFields: ['main'],
      conditions: ['node'],
      logLevel: 'warning',
      plugins: [
        {
          name: 'ao-installed-packages-stay-external',
          setup(b) {
            // Relative to the final directory: the temporary one is its sibling, at the same depth.
            b.onResolve({ filter: /^[^./]/ }, async (a) => {
              if (a.path.startsWith('@ao/') || a.pluginData === 'resolving') return undefined;
              if (a.path.startsWith('node:')) return { external: true };
              const r = await b.resolve(a.path, { kind: a.kind, resolveDir: a.resolveDir, pluginData: 'resolving' });
              if (r.errors.length) return { errors: r.errors };
              return { path: relativeSpecifier(outDir, r.path), external: true };
            });
            // Paths a module finds from its own location (the migrations folder, the inspector's
            // build) must not move into dist/: its `import.meta.url` stays its source file's.
            b.onLoad({ filter: /\.ts$/ }, async (a) => {
              const src = await readFile(a.path, 'utf8');
              const own = `new URL(${JSON.stringify(relativeSpecifier(outDir, a.path))}, import.meta.url).href`;
              return { contents: src.replaceAll('import.meta.url', own), loader: 'ts' };
            });
          },
        },
      ],
    });
    await writeFile(join(tmp, STAMP), `${hash}\n`);
    try {
      await rename(tmp, outDir);
    } catch (e) {
      // Another process built the same inputs and renamed first: its build is as good as ours.
      const code = /** @type {NodeJS.ErrnoException} */ (e).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * Removes all but the newest `keep` builds in `distDir` (by when they were built; `current`, the
 * one this process runs, always stays), temporary directories of builds whose process is gone or
 * that are over an hour old, and the single-file build of before (`ao.mjs` and its stamp).
 * Best effort: a directory another process removes first is not an error.
 * @param {string} distDir
 * @param {string} current the build directory this process uses
 * @param {number} [keep]
 * @returns {Promise<string[]>} the directories removed
 */
export async function pruneBuilds(distDir, current, keep = KEEP_BUILDS) {
  const entries = await readdir(distDir, { withFileTypes: true }).catch(() => []);
  /** @type {{ path: string, built: number }[]} */
  const builds = [];
  /** @type {string[]} */
  const removed = [];
  for (const e of entries) {
    const path = join(distDir, e.name);
    if (e.isDirectory() && e.name.startsWith(PREFIX)) {
      const s = await stat(join(path, STAMP)).catch(() => undefined);
      builds.push({ path, built: s?.mtimeMs ?? 0 });
    } else if (e.isDirectory() && e.name.startsWith(TMP_PREFIX)) {
      const pid = Number(e.name.slice(TMP_PREFIX.length).split('-')[0]);
      const s = await stat(path).catch(() => undefined);
      if (s && (!alive(pid) || Date.now() - s.mtimeMs > 3_600_000)) removed.push(path);
    }
  }
  builds.sort((a, b) => b.built - a.built);
  let kept = builds.some((b) => b.path === current) ? 1 : 0;
  for (const b of builds) {
    if (b.path === current) continue;
    if (kept < keep) kept++;
    else removed.push(b.path);
  }
  for (const p of removed) await rm(p, { recursive: true, force: true });
  await rm(join(distDir, ENTRY), { force: true });
  await rm(join(distDir, STAMP), { force: true });
  return removed;
}

/** @param {number} pid */
function alive(pid) {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return /** @type {NodeJS.ErrnoException} */ (e).code === 'EPERM';
  }
}
