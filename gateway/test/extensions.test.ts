import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadExtensions } from '../src/node.js';

describe('AO_GRAPHS user modules', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });
  const module = async (text: string) => {
    const d = await mkdtemp(join(tmpdir(), 'ao-ext-'));
    dirs.push(d);
    const f = join(d, 'ext.mjs');
    await writeFile(f, text);
    return f;
  };

  it('loads the graphs and tools a module exports', async () => {
    const f = await module(`export const graphs = [{ name: 'g', version: 'v', nodes: [] }]; export const tools = [{ name: 't' }];`);
    const ext = await loadExtensions(f);
    expect(ext.graphs).toHaveLength(1);
    expect(ext.tools).toHaveLength(1);
    expect(await loadExtensions(undefined)).toEqual({ graphs: [], tools: [] });
  });

  it('a missing module or a wrong export is AO_CONFIG_INVALID naming AO_GRAPHS', async () => {
    await expect(loadExtensions('/nonexistent/ext.ts')).rejects.toMatchObject({ code: 'AO_CONFIG_INVALID', field: 'AO_GRAPHS' });
    await expect(loadExtensions(await module('export const graphs = 42;'))).rejects.toMatchObject({ code: 'AO_CONFIG_INVALID' });
    await expect(loadExtensions(await module('export const graphs = [42];'))).rejects.toMatchObject({ code: 'AO_CONFIG_INVALID' });
  });
});
