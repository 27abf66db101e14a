import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storeConformance } from './conformance.js';
import { openPgliteStore } from './pglite/pglite-store.js';
import { openPgStore } from './pg/pg-store.js';
import { createTestDatabase, postgresAvailable } from '../testing/postgres.js';

storeConformance('pglite (in memory)', async () => ({ store: await openPgliteStore() }));

// A new data directory is a copy of the cached template (built here first if the cache has none).
storeConformance('pglite (data directory from the template)', async () => {
  const root = await mkdtemp(join(tmpdir(), 'ao-conformance-'));
  let source = '';
  const store = await openPgliteStore({ dataDir: join(root, 'pglite'), onDataDir: (s) => (source = s) });
  if (source !== 'template' && source !== 'new-template') throw new Error(`the data directory was not made from the template (${source})`);
  return { store, cleanup: () => rm(root, { recursive: true, force: true }) };
});

const pgUp = await postgresAvailable();
storeConformance(
  'postgres',
  async () => {
    const db = await createTestDatabase();
    return { store: await openPgStore({ url: db.url }), cleanup: db.drop };
  },
  { skip: () => !pgUp },
);
