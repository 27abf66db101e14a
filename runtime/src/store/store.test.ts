import { storeConformance } from './conformance.js';
import { openPgliteStore } from './pglite/pglite-store.js';
import { openPgStore } from './pg/pg-store.js';
import { createTestDatabase, postgresAvailable } from '../testing/postgres.js';

storeConformance('pglite (in memory)', async () => ({ store: await openPgliteStore() }));

const pgUp = await postgresAvailable();
storeConformance(
  'postgres',
  async () => {
    const db = await createTestDatabase();
    return { store: await openPgStore({ url: db.url }), cleanup: db.drop };
  },
  { skip: () => !pgUp },
);
