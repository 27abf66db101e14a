import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { startNodeFlags } from './serve.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('bench:serve starts the server as pnpm start does', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it("takes the node flags of the repository's start script (a smaller young generation for idle memory)", () => {
    expect(startNodeFlags(ROOT)).toEqual(['--max-semi-space-size=4']);
  });

  it('takes every flag, with or without a value, and none from a start script without flags', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ao-serve-flags-'));
    const write = (start: string) => writeFile(join(dir!, 'package.json'), JSON.stringify({ scripts: { start } }));
    await write('node scripts/build-inspector.mjs && node --max-semi-space-size=8 --expose-gc scripts/ao.mjs serve');
    expect(startNodeFlags(dir)).toEqual(['--max-semi-space-size=8', '--expose-gc']);
    await write('node scripts/build-inspector.mjs && node scripts/ao.mjs serve');
    expect(startNodeFlags(dir)).toEqual([]);
  });
});
