import type { Store } from '@ao/runtime';

/**
 * The API keys a gateway checks and the CLI and bench make (`engine.apiKeys`): the store's key
 * table and nothing else of it. The gateway and the bench reach the store only through ports like
 * this one, `engine.queries` and `engine.importRun` (a lint rule keeps them off `engine.store`).
 */
export type ApiKeyPort = Pick<Store, 'createApiKey' | 'getApiKey' | 'hasApiKeys' | 'listApiKeys' | 'revokeApiKey'>;

/** The API-key port over a store: its key methods, bound, and nothing more reachable. */
export function apiKeysOf(store: Store): ApiKeyPort {
  return {
    createApiKey: (k) => store.createApiKey(k),
    getApiKey: (id) => store.getApiKey(id),
    hasApiKeys: () => store.hasApiKeys(),
    listApiKeys: () => store.listApiKeys(),
    revokeApiKey: (id) => store.revokeApiKey(id),
  };
}
