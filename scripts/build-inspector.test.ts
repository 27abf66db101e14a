import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inspectorInputs } from './build-inspector.mjs';
import { ensureBuilt, hashInputs, STAMP } from './stamp.mjs';

// The decision `pnpm start` makes before serving: build the inspector only when what it is built
// from changed. A fake repository and an injected build stand in for the app and vite.
describe('the inspector is built only when its sources changed', () => {
  let root: string;
  let outDir: string;
  let builds: number;
  const build = async () => {
    builds++;
    await mkdir(outDir, { recursive: true });
    await writeFile(join(outDir, 'index.html'), '<html></html>');
  };
  const hash = () => hashInputs(root, inspectorInputs(root));
  const ensure = async (b: () => Promise<void> = build) => ensureBuilt({ hash: await hash(), outDir, build: b });

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'ao-inspector-build-'));
    outDir = join(root, 'inspector', 'build');
    builds = 0;
    await mkdir(join(root, 'inspector', 'src', 'routes'), { recursive: true });
    await writeFile(join(root, 'inspector', 'src', 'app.html'), '<div>%sveltekit.body%</div>');
    await writeFile(join(root, 'inspector', 'src', 'routes', '+page.svelte'), '<h1>runs</h1>');
    await writeFile(join(root, 'inspector', 'package.json'), '{"name":"@ao/inspector"}');
    await writeFile(join(root, 'inspector', 'vite.config.ts'), 'export default {};');
    await writeFile(join(root, 'pnpm-lock.yaml'), "lockfileVersion: '9.0'\n");
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it('builds when there is no build yet, and writes the stamp after it', async () => {
    expect(await ensure()).toBe('built');
    expect(builds).toBe(1);
    expect((await readFile(join(outDir, STAMP), 'utf8')).trim()).toBe(await hash());
  });

  it('skips the build when the stamp matches the sources', async () => {
    await ensure();
    expect(await ensure()).toBe('fresh');
    expect(builds).toBe(1);
  });

  it.each([
    ['a source file changes', 'inspector/src/routes/+page.svelte', '<h1>all runs</h1>'],
    ['a source file is added', 'inspector/src/lib/new.ts', 'export const x = 1;'],
    ['a config file changes', 'inspector/vite.config.ts', 'export default { base: "/" };'],
    ['a config file appears', 'inspector/svelte.config.js', 'export default {};'],
    ['the manifest changes', 'inspector/package.json', '{"name":"@ao/inspector","version":"2"}'],
    ['the lockfile changes', 'pnpm-lock.yaml', "lockfileVersion: '9.0'\n# vite bumped\n"],
  ])('rebuilds when %s', async (_what, path, body) => {
    await ensure();
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), body);
    expect(await ensure()).toBe('built');
    expect(builds).toBe(2);
  });

  it('rebuilds when a source file is renamed, contents unchanged', async () => {
    await ensure();
    const body = await readFile(join(root, 'inspector', 'src', 'app.html'));
    await rm(join(root, 'inspector', 'src', 'app.html'));
    await writeFile(join(root, 'inspector', 'src', 'index.html'), body);
    expect(await ensure()).toBe('built');
  });

  it('leaves no stamp when the build fails, so the next start builds again', async () => {
    await ensure();
    await writeFile(join(root, 'inspector', 'src', 'app.html'), '<div>changed</div>');
    const failing = async () => {
      await build();
      throw new Error('vite build failed (exit code 1)');
    };
    await expect(ensure(failing)).rejects.toThrow('vite build failed');
    await expect(readFile(join(outDir, STAMP), 'utf8')).rejects.toThrow(/ENOENT/);
    expect(await ensure()).toBe('built');
    expect(builds).toBe(3);
  });

  it('keeps the build of a checkout that moved: paths are hashed relative to the repository', async () => {
    const before = await hash();
    const moved = `${root}-moved`;
    await rm(moved, { recursive: true, force: true });
    await rename(root, moved);
    try {
      expect(await hashInputs(moved, inspectorInputs(moved))).toBe(before);
    } finally {
      await rename(moved, root);
    }
  });
});
