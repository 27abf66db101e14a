import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';

/** The libraries whose versions decide most of the numbers; read from the runtime package. */
export const TRACKED_PACKAGES = ['drizzle-orm', '@electric-sql/pglite', 'pg', 'nact'] as const;

export interface MachineInfo {
  date: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  packages: Record<string, string>;
}

export function machineInfo(): MachineInfo {
  return {
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10,
    os: `${os.type()} ${os.release()} (${os.arch()})`,
    node: process.version,
    packages: packageVersions(),
  };
}

function packageVersions(): Record<string, string> {
  const require = createRequire(new URL('../../runtime/package.json', import.meta.url));
  const out: Record<string, string> = {};
  for (const name of TRACKED_PACKAGES) {
    try {
      out[name] = (require(`${name}/package.json`) as { version: string }).version;
    } catch {
      // Packages whose `exports` hide package.json (drizzle-orm, pglite): look along the same
      // node_modules search path that require() would walk.
      const dir = (require.resolve.paths(name) ?? []).map((p) => join(p, name)).find((d) => existsSync(join(d, 'package.json')));
      out[name] = dir ? (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version : 'not found';
    }
  }
  return out;
}

/** A positive integer from the environment (a bench knob), or `fallback` when unset. */
export function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

/** A comma-separated list from the environment, or `fallback`'s. */
export const listEnv = (name: string, fallback: string): string[] =>
  (process.env[name] ?? fallback)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
