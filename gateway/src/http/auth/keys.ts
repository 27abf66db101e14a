import { createHash, randomBytes } from 'node:crypto';
import { AoError } from '@ao/graphs';
import type { ApiKeyRecord, Store } from '@ao/runtime';

/** `ao_<id>_<secret>`: a public id (12 characters) and 256 random bits of secret. */
const KEY = /^ao_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$/;
/** Tenant names: short, printable, safe in logs and URLs. */
export const TENANT = /^[A-Za-z0-9_.-]{1,64}$/;

/** sha256 (hex) of a key: what the store keeps. */
export const hashKey = (key: string): string => createHash('sha256').update(key).digest('hex');

/** The id inside a well-formed key, or undefined (then it is not a key of ours at all). */
export function keyIdOf(key: string): string | undefined {
  return KEY.exec(key)?.[1];
}

/**
 * A new API key for `tenant`, stored as its hash. The key itself is returned once and never again.
 * @example
 * const { key } = await createApiKey(store, { tenant: 'acme', readOnly: true });
 */
export async function createApiKey(
  store: Pick<Store, 'createApiKey'>,
  o: { tenant: string; readOnly?: boolean; name?: string },
): Promise<{ key: string; record: ApiKeyRecord }> {
  if (!TENANT.test(o.tenant)) throw new AoError('AO_VALIDATION', 'tenant: 1 to 64 letters, digits, "_", "." or "-"', { field: 'tenant' });
  const id = randomBytes(8).toString('hex').slice(0, 12);
  const key = `ao_${id}_${randomBytes(32).toString('base64url')}`;
  const record = await store.createApiKey({ id, tenant: o.tenant, name: o.name ?? null, hash: hashKey(key), readOnly: o.readOnly ?? false });
  return { key, record };
}
