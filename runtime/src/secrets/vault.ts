import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { AoError } from '@ao/graphs';
import type { Store } from '../store/mod.js';

/** Longest chain of replays of replays whose secrets a replay may read. */
const MAX_CHAIN = 32;

/**
 * Secret tool results, encrypted at rest: AES-256-GCM under a 32-byte key (AO_SECRET_KEY), a fresh
 * 12-byte nonce per value, and the run id and handle as associated data, so a row copied to another
 * run or handle does not decrypt. The event log holds only handles (see `sealResult`).
 *
 * Without a key nothing can be sealed (AO_SECRET_KEY_MISSING); Effects then drops the secret
 * parts of results instead of storing them.
 *
 * @example
 * const vault = new SecretVault(store, Buffer.from(process.env.AO_SECRET_KEY!, 'base64'));
 * await vault.forRun(run).seal([{ handle, value: 'tok_123' }]);
 */
export class SecretVault {
  private readonly key: Buffer | undefined;
  /** A fingerprint of the key, stored with each row (never the key). */
  readonly keyId: string | undefined;

  constructor(
    private readonly store: Store,
    key?: Uint8Array,
  ) {
    if (key && key.length !== 32) throw new AoError('AO_CONFIG_INVALID', `the secret key must be 32 bytes, not ${key.length}`, { field: 'AO_SECRET_KEY' });
    this.key = key ? Buffer.from(key) : undefined;
    this.keyId = this.key ? createHash('sha256').update('ao-secret-key\0').update(this.key).digest('hex').slice(0, 16) : undefined;
  }

  get enabled(): boolean {
    return this.key !== undefined;
  }

  /** The secrets of one run: it seals its own, and reads its own first, then those of the runs it replays. */
  forRun(run: { id: string; replay?: { of: string } | null }): RunSecrets {
    let chain: Promise<string[]> | undefined;
    const chainOf = async (): Promise<string[]> => {
      const ids = [run.id];
      let of = run.replay?.of;
      while (of && ids.length < MAX_CHAIN && !ids.includes(of)) {
        ids.push(of);
        of = (await this.store.getRun(of))?.replay?.of;
      }
      return ids;
    };
    return {
      enabled: this.enabled,
      seal: (entries) => this.seal(run.id, entries),
      open: async (handles) => this.open((chain ??= chainOf()), handles),
    };
  }

  private async seal(runId: string, entries: ReadonlyArray<{ handle: string; value: unknown }>): Promise<void> {
    if (!entries.length) return;
    const key = this.requireKey();
    await this.store.putSecrets(
      entries.map(({ handle, value }) => {
        const iv = randomBytes(12);
        const c = createCipheriv('aes-256-gcm', key, iv);
        c.setAAD(aad(runId, handle));
        const data = Buffer.concat([c.update(JSON.stringify(value ?? null), 'utf8'), c.final(), c.getAuthTag()]);
        return { runId, handle, keyId: this.keyId!, iv: iv.toString('base64'), data: data.toString('base64') };
      }),
    );
  }

  private async open(chain: Promise<string[]>, handles: readonly string[]): Promise<Map<string, unknown>> {
    const out = new Map<string, unknown>();
    if (!handles.length) return out;
    const ids = await chain;
    const rows = await this.store.getSecrets(ids, [...new Set(handles)]);
    // The run's own value first, then the nearest original's.
    rows.sort((a, b) => ids.indexOf(a.runId) - ids.indexOf(b.runId));
    for (const r of rows) {
      if (out.has(r.handle)) continue;
      if (!this.key || r.keyId !== this.keyId) {
        throw new AoError(
          'AO_SECRET_UNREADABLE',
          `secret ${r.handle} of run ${r.runId} was sealed with key ${r.keyId}; this node has ${this.keyId ? `key ${this.keyId}` : 'no AO_SECRET_KEY'}`,
          {
            details: { runId: r.runId, handle: r.handle, keyId: r.keyId },
          },
        );
      }
      try {
        const raw = Buffer.from(r.data, 'base64');
        const d = createDecipheriv('aes-256-gcm', this.key, Buffer.from(r.iv, 'base64'));
        d.setAAD(aad(r.runId, r.handle));
        d.setAuthTag(raw.subarray(raw.length - 16));
        out.set(r.handle, JSON.parse(Buffer.concat([d.update(raw.subarray(0, raw.length - 16)), d.final()]).toString('utf8')));
      } catch (e) {
        throw new AoError('AO_SECRET_UNREADABLE', `secret ${r.handle} of run ${r.runId} does not decrypt: the row was altered`, {
          cause: e,
          details: { runId: r.runId, handle: r.handle },
        });
      }
    }
    return out;
  }

  private requireKey(): Buffer {
    if (!this.key) {
      throw new AoError(
        'AO_SECRET_KEY_MISSING',
        'no AO_SECRET_KEY is configured, so a secret cannot be stored (with Postgres every node needs the same key: set AO_SECRET_KEY to 32 random bytes in base64)',
      );
    }
    return this.key;
  }
}

/** The vault as one run's actors see it. */
export interface RunSecrets {
  /** Whether secrets can be sealed (a key is configured). */
  readonly enabled: boolean;
  /** Encrypt and store values under their handles (a handle written again is replaced). */
  seal(entries: ReadonlyArray<{ handle: string; value: unknown }>): Promise<void>;
  /** The values of these handles this run holds (or the runs it replays), by handle; unknown handles are left out. */
  open(handles: readonly string[]): Promise<Map<string, unknown>>;
}

const aad = (runId: string, handle: string) => Buffer.from(`${runId}\0${handle}`, 'utf8');
