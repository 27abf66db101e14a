// The container image's build step (Dockerfile, `RUN node scripts/build-image.mjs`): the `ao` CLI
// bundled into dist/app/ (a fixed name, which the image's ENTRYPOINT runs) and the inspector built
// into inspector/build/. The bundle imports installed packages by paths relative to dist/app/ and
// finds the migrations (runtime/src/store/drizzle) and the inspector from their source locations,
// so the image keeps those paths (see the Dockerfile's final stage).
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import process from 'node:process';
import { pathToFileURL } from 'node:url';
import { buildCli, cliInputs, ENTRY } from './build-cli.mjs';
import { hashInputs } from './stamp.mjs';

const ROOT = join(import.meta.dirname, '..');
/** Where the image's CLI lives, relative to the repository (and to the image's WORKDIR). */
export const IMAGE_CLI = join('dist', 'app', ENTRY);

async function main() {
  const out = join(ROOT, 'dist', 'app');
  await rm(out, { recursive: true, force: true });
  await buildCli(ROOT, out, await hashInputs(ROOT, cliInputs(ROOT)));
  if (!process.argv.includes('--no-inspector')) {
    const { viteBuild } = await import('./build-inspector.mjs');
    await viteBuild(ROOT);
  }
  process.stdout.write(`built ${IMAGE_CLI}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((e) => {
    process.stderr.write(`error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
}
