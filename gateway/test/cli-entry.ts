import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCli, buildDir, cliInputs, ENTRY } from '../../scripts/build-cli.mjs';
import { hashInputs, STAMP } from '../../scripts/stamp.mjs';

/** The CLI's source entry (what tsx runs). */
export const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/**
 * Node itself with tsx as a loader: one process, so a SIGKILL kills the server. (The `tsx` CLI
 * runs the script in a child process, and killing the CLI left that child running.)
 */
const FROM_SOURCE = ['--import', 'tsx', CLI];

let bundle: Promise<string | undefined> | undefined;

/**
 * The entry of the CLI's bundle for the sources as they are now (`dist/cli-<hash>/ao.mjs`, what
 * `pnpm ao` and `pnpm start` run), built as the launcher builds it when it is missing; once per
 * test file. Undefined when `AO_TEST_CLI=source` or the build fails (then tests use tsx).
 */
function currentBundle(): Promise<string | undefined> {
  bundle ??= (async () => {
    if (process.env.AO_TEST_CLI === 'source') return undefined;
    try {
      const hash = await hashInputs(ROOT, cliInputs(ROOT));
      const dir = buildDir(join(ROOT, 'dist'), hash);
      // Two test files may build at once: each builds beside it and the first rename stands.
      if (!existsSync(join(dir, STAMP))) await buildCli(ROOT, dir, hash);
      return join(dir, ENTRY);
    } catch (e) {
      console.warn(`[tests] no CLI bundle (${(e as Error).message}): ao runs from source through tsx`);
      return undefined;
    }
  })();
  return bundle;
}

/**
 * Node's arguments that run `ao` for a process with `env`: the compiled bundle the user runs (no
 * TypeScript compiled at each start: about half the CPU of a command), or the sources through tsx
 * when `AO_GRAPHS` names user modules (they import `@ao/graphs` from source, and a graph built by
 * another copy of its builder is not recognised: scripts/ao.mjs does the same).
 */
export async function aoArgs(env: Record<string, string | undefined> = {}): Promise<string[]> {
  if ({ ...process.env, ...env }.AO_GRAPHS) return FROM_SOURCE;
  let entry = await currentBundle();
  // Pruned meanwhile (the launcher keeps the two newest builds: sources edited while tests run,
  // then `pnpm ao` twice): the build of the sources as they are now.
  if (entry && !existsSync(entry)) {
    bundle = undefined;
    entry = await currentBundle();
  }
  return entry ? [entry] : FROM_SOURCE;
}
