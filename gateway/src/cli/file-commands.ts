import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { parseRunFile } from '@ao/runtime';
import type { Values } from './args.js';
import { ApiError } from './client.js';
import type { Client } from './client.js';
import { out, outRaw } from './output.js';

/** `ao export`: a finished run as one JSON file, to `-o FILE` or stdout. */
export async function exportRun(client: Client, ref: string | undefined, values: Values): Promise<number> {
  if (!ref) throw new ApiError(400, 'AO_VALIDATION', 'usage: ao export <run-id> [-o FILE] [--no-checkpoints]', 'id');
  const file = await client.exportRun(ref, { checkpoints: !values['no-checkpoints'] });
  const text = `${JSON.stringify(file, null, 1)}\n`;
  if (!values.output || values.output === '-') {
    outRaw(text);
    return 0;
  }
  await writeFile(values.output, text);
  out(
    `exported run ${file.run.id} (${file.run.graph}, ${file.run.status}, ${file.events.length} events, ${file.checkpoints.length} checkpoints) to ${values.output}`,
  );
  return 0;
}

/** `ao import`: load a run file (`-` for stdin) as a run, under its own id or `--as`. */
export async function importRun(client: Client, path: string | undefined, values: Values): Promise<number> {
  if (!path) throw new ApiError(400, 'AO_VALIDATION', 'usage: ao import <FILE> [--as ID]', 'file');
  const text = await (path === '-' ? Promise.resolve(readFileSync(0, 'utf8')) : readFile(path, 'utf8')).catch((e: Error) => {
    throw new ApiError(400, 'AO_VALIDATION', `cannot read ${path}: ${e.message}`, 'file');
  });
  const file = parseRunFile(text, path);
  const r = await client.importRun(file, values.as !== undefined ? { as: values.as } : {});
  out(`imported run ${r.id} (${r.graph}, ${r.status}, ${r.events} events, ${r.checkpoints} checkpoints) via ${client.where}`);
  return 0;
}
