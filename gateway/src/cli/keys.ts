import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AoError } from '@ao/graphs';
import { DataDirLock, loadConfig, openPgliteStore, openPgStore } from '@ao/runtime';
import type { Store } from '@ao/runtime';
import { createApiKey } from '../http/auth/mod.js';

const USAGE = `ao keys create --tenant T [--read-only] [--name N]   a new API key (printed once; only its hash is stored)
ao keys list                                        keys: id, tenant, read-only, name, created, revoked
ao keys revoke <key-id>                             revoke a key (servers notice within 5 s)`;

const out = (s: string) => process.stdout.write(`${s}\n`);

/**
 * `ao keys ...`: API keys, written straight to the store (DATABASE_URL, or PGlite under
 * AO_DATA_DIR). Creating the first key turns auth on for every gateway on that store.
 */
export async function keysCommand(argv: string[], env: Record<string, string | undefined> = process.env): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      tenant: { type: 'string' },
      'read-only': { type: 'boolean', default: false },
      name: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const [sub, id] = positionals;
  if (values.help || !sub) {
    out(USAGE);
    return values.help ? 0 : 2;
  }
  const config = loadConfig(env);
  // The embedded store is one process at a time: a server holding the data directory refuses us
  // (AO_DATA_DIR_LOCKED, naming it); stop it, run `ao keys ...`, and start it again.
  const lock = config.DATABASE_URL ? undefined : await DataDirLock.acquire({ dir: config.AO_DATA_DIR, command: `ao keys ${sub}` });
  let store: Store;
  try {
    store = config.DATABASE_URL
      ? await openPgStore({ url: config.DATABASE_URL, max: 1 })
      : await openPgliteStore({ dataDir: join(config.AO_DATA_DIR, 'pglite'), template: { ...(config.AO_CACHE_DIR ? { cacheDir: config.AO_CACHE_DIR } : {}) } });
  } catch (e) {
    await lock?.release();
    throw e;
  }
  try {
    switch (sub) {
      case 'create': {
        if (!values.tenant) throw new AoError('AO_VALIDATION', 'usage: ao keys create --tenant T [--read-only] [--name N]', { field: 'tenant' });
        const { key, record } = await createApiKey(store, {
          tenant: values.tenant,
          readOnly: values['read-only'],
          ...(values.name ? { name: values.name } : {}),
        });
        out(key);
        process.stderr.write(`key ${record.id} for tenant ${record.tenant}${record.readOnly ? ' (read-only)' : ''}: keep it now, it is not shown again\n`);
        return 0;
      }
      case 'list': {
        const keys = await store.listApiKeys();
        if (!keys.length) out('no keys (the API is open: anyone who reaches it is tenant "default")');
        for (const k of keys)
          out(
            `${k.id}  ${k.tenant.padEnd(16)} ${k.readOnly ? 'read-only ' : 'read-write'}  ${k.createdAt}  ${k.revokedAt ? `revoked ${k.revokedAt}` : 'active'}${k.name ? `  ${k.name}` : ''}`,
          );
        return 0;
      }
      case 'revoke': {
        if (!id) throw new AoError('AO_VALIDATION', 'usage: ao keys revoke <key-id>', { field: 'id' });
        if (!(await store.revokeApiKey(id))) throw new AoError('AO_VALIDATION', `no active key ${JSON.stringify(id)}`, { field: 'id' });
        out(`key ${id} revoked`);
        return 0;
      }
      default:
        out(`unknown keys command "${sub}"\n\n${USAGE}`);
        return 2;
    }
  } finally {
    await store.close();
    await lock?.release();
  }
}
