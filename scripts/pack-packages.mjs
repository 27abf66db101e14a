#!/usr/bin/env node
// `pnpm pack:packages [dir]`: the tarballs a project outside the repository installs with
// `npm install <dir>/ao-*.tgz` (README, "In your own project"): @ao/graphs, @ao/runtime,
// @ao/actors and @ao/gateway, built from scratch (build-packages.mjs --clean) and packed by pnpm,
// which applies each `publishConfig` (exports and bin to dist/) and pins `workspace:*` to the
// version. Default directory: dist/packages/. Prints the tarballs' paths, one a line.
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import process from 'node:process';
import { pathToFileURL } from 'node:url';
import { buildPackages, PACKAGES } from './build-packages.mjs';

const ROOT = join(import.meta.dirname, '..');

/**
 * @param {string} root the repository
 * @param {string} dest where the tarballs go (emptied of older `ao-*.tgz` first)
 * @param {{ inspector?: string }} [o] a built inspector to ship instead of the workspace's (build-packages.mjs)
 * @returns {Promise<string[]>} the tarballs, in dependency order
 */
export async function packPackages(root, dest, o = {}) {
  await buildPackages(root, { clean: true, ...o });
  await mkdir(dest, { recursive: true });
  for (const f of await readdir(dest)) if (/^ao-.*\.tgz$/.test(f)) await rm(join(dest, f));
  const [cmd, ...pre] = await pnpmCommand(root);
  /** @type {{ name: string, version: string }[]} */
  const manifests = await Promise.all(PACKAGES.map(async (p) => JSON.parse(await readFile(join(root, p, 'package.json'), 'utf8'))));
  const filters = manifests.flatMap((m) => ['--filter', m.name]);
  // Already built: the prepacks (build-packages.mjs) would only find tsc's build current and copy
  // the assets again.
  await run(cmd, [...pre, '--recursive', ...filters, 'pack', '--pack-destination', dest], root, { AO_PACKAGES_BUILT: '1' });
  return manifests.map((m) => join(dest, `${m.name.replace(/^@/, '').replace('/', '-')}-${m.version}.tgz`));
}

/**
 * pnpm as this process was started by (`pnpm pack:packages`), else the version the repository
 * names in `packageManager` through npx.
 * @param {string} root
 * @returns {Promise<[string, ...string[]]>}
 */
async function pnpmCommand(root) {
  const exec = process.env.npm_execpath;
  if (exec && /pnpm/.test(basename(exec))) return [process.execPath, exec];
  const { packageManager } = JSON.parse(await readFile(join(root, 'package.json'), 'utf8'));
  return ['npx', '-y', packageManager];
}

/**
 * @param {string} cmd
 * @param {string[]} args
 * @param {string} cwd
 * @param {Record<string, string>} env
 * @returns {Promise<void>}
 */
function run(cmd, args, cwd, env) {
  return new Promise((ok, fail) => {
    const p = spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
    p.on('error', fail);
    p.on('exit', (code, signal) => (code === 0 ? ok() : fail(new Error(`${cmd} ${args.join(' ')} in ${cwd} failed (${signal ?? `exit code ${code}`})`))));
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const dest = resolve(process.argv[2] ?? join(ROOT, 'dist', 'packages'));
  packPackages(ROOT, dest).then(
    (tarballs) => process.stdout.write(`${tarballs.join('\n')}\n`),
    (e) => {
      process.stderr.write(`error: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
