// The `ao` CLI (and `ao serve`) as one JavaScript file, so a command does not compile the
// workspace's TypeScript through tsx each time it starts (seconds on two cores). esbuild bundles
// the workspace packages (@ao/*) into dist/ao.mjs; every other package stays an import of the
// installed file (a path relative to dist/, since pnpm lets each package see only its own
// dependencies). scripts/ao.mjs rebuilds it when its inputs' hash changed (stamp.mjs).
import { readFile, rename, rm } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import process from 'node:process';

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
    files: [...pkgs.map((p) => join(root, p, 'package.json')), 'package.json', 'pnpm-lock.yaml', 'tsconfig.base.json', 'scripts/build-cli.mjs'].map((f) => join(root, f)),
  };
}

/** @param {string} from @param {string} to */
const relativeSpecifier = (from, to) => `./${relative(from, to).split(sep).join('/')}`;

/**
 * Bundles gateway/src/cli/main.ts into `outfile`: written beside it and renamed into place, so a
 * command starting meanwhile never loads half a file.
 * @param {string} root
 * @param {string} outfile
 * @returns {Promise<void>}
 */
export async function buildCli(root, outfile) {
  const outDir = dirname(outfile);
  const tmp = `${outfile}.${process.pid}.tmp.mjs`;
  // Loaded here, not at the top: a command whose build is current never loads esbuild.
  const { build } = await import('esbuild');
  try {
    await build({
      entryPoints: [join(root, 'gateway', 'src', 'cli', 'main.ts')],
      outfile: tmp,
      bundle: true,
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
    await rename(tmp, outfile);
  } finally {
    await rm(tmp, { force: true });
  }
}
