import { timingSafeEqual } from 'node:crypto';
import type { Store } from '@ao/runtime';
import { hashKey, keyIdOf } from './keys.js';

/** Who is asking: the tenant whose runs the request may see, and what it may do. */
export interface Principal {
  tenant: string;
  /** The API key's id; null in open mode (no key presented, none required). */
  keyId: string | null;
  readOnly: boolean;
}

/** The tenant of runs started without a key (open mode, the CLI's embedded mode). */
export const DEFAULT_TENANT = 'default';
export const OPEN_PRINCIPAL: Principal = Object.freeze({ tenant: DEFAULT_TENANT, keyId: null, readOnly: false });

export interface AuthOptions {
  /** Require a key even when none exists (`AO_REQUIRE_AUTH=1`). */
  required: boolean;
  /** How long a verified key, a refused one, and "does any key exist" are remembered (revocation takes this long). */
  cacheMs: number;
}

interface Cached<T> {
  value: T;
  until: number;
}

const MAX_CACHED = 10_000;

/**
 * Verifies API keys against the store. Keys are 256-bit random secrets, so the store keeps a
 * sha256 and a lookup by the key's public id; a verified key (and a refused one, so random keys do
 * not cost a query each) is remembered for `cacheMs`.
 */
export class Authenticator {
  private readonly keys = new Map<string, Cached<Principal | undefined>>();
  private any: Cached<boolean> | undefined;
  /** Look-ups on their way, by key hash. */
  private readonly asking = new Map<string, Promise<Principal | undefined>>();

  constructor(
    private readonly apiKeys: Pick<Store, 'getApiKey' | 'hasApiKeys'>,
    private readonly o: AuthOptions,
  ) {}

  /** Whether a request must carry a key: always with `required`, else once any key exists. */
  async required(): Promise<boolean> {
    if (this.o.required) return true;
    const now = Date.now();
    if (this.any && this.any.until > now) return this.any.value;
    const value = await this.apiKeys.hasApiKeys();
    this.any = { value, until: now + this.o.cacheMs };
    return value;
  }

  /** The principal of a presented key, or undefined when it is malformed, unknown or revoked. */
  async verify(key: string): Promise<Principal | undefined> {
    const id = keyIdOf(key);
    if (!id) return undefined;
    const hash = hashKey(key);
    const now = Date.now();
    const hit = this.keys.get(hash);
    if (hit && hit.until > now) return hit.value;
    // A burst of requests with one key before it is cached (1,000 submits at once) asks once.
    const asking = this.asking.get(hash);
    if (asking) return asking;
    const lookup = this.lookUp(id, hash).finally(() => this.asking.delete(hash));
    this.asking.set(hash, lookup);
    return lookup;
  }

  private async lookUp(id: string, hash: string): Promise<Principal | undefined> {
    const rec = await this.apiKeys.getApiKey(id);
    const ok = rec !== undefined && rec.revokedAt === null && timingSafeEqual(Buffer.from(rec.hash, 'hex'), Buffer.from(hash, 'hex'));
    const value = ok ? Object.freeze({ tenant: rec.tenant, keyId: rec.id, readOnly: rec.readOnly }) : undefined;
    if (this.keys.size >= MAX_CACHED) this.keys.clear();
    this.keys.set(hash, { value, until: Date.now() + this.o.cacheMs });
    return value;
  }

  /** Forget what is cached (tests; after creating or revoking a key in this process). */
  reset(): void {
    this.keys.clear();
    this.asking.clear();
    this.any = undefined;
  }
}
