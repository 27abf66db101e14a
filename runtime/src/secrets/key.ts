import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { AoError } from '@ao/graphs';

/** AO_SECRET_KEY: 32 bytes in base64 (`openssl rand -base64 32`). */
export function parseSecretKey(text: string): Buffer {
  const key = /^[A-Za-z0-9+/_-]+={0,2}$/.test(text.trim()) ? Buffer.from(text.trim(), 'base64') : Buffer.alloc(0);
  if (key.length !== 32)
    throw new AoError('AO_CONFIG_INVALID', 'AO_SECRET_KEY must be 32 random bytes in base64 (e.g. `openssl rand -base64 32`)', { field: 'AO_SECRET_KEY' });
  return key;
}

/**
 * The key secrets are sealed with. AO_SECRET_KEY when set. Otherwise, for the embedded store, a
 * key generated once and kept in `keyFile` (beside the PGlite data dir, mode 0600): the data and
 * its key live and are backed up together, like the database itself. For Postgres there is no
 * fallback (undefined): several nodes share the database and must share the key, and a key
 * generated per node would make a run's secrets unreadable on the node that takes it over.
 */
export async function resolveSecretKey(o: { configured?: string | undefined; keyFile?: string | undefined }): Promise<Buffer | undefined> {
  if (o.configured) return parseSecretKey(o.configured);
  if (!o.keyFile) return undefined;
  try {
    return parseSecretKey(await readFile(o.keyFile, 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new AoError('AO_CONFIG_INVALID', `the secret key file ${o.keyFile} is unreadable or not 32 bytes in base64`, { field: 'AO_SECRET_KEY', cause: e });
    }
  }
  await mkdir(dirname(o.keyFile), { recursive: true });
  const key = randomBytes(32);
  try {
    // `wx`: of two processes starting at once, one writes the key and the other reads it.
    await writeFile(o.keyFile, `${key.toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
    return key;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return parseSecretKey(await readFile(o.keyFile, 'utf8'));
    throw e;
  }
}
