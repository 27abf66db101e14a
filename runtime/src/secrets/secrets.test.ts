import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { isAoError } from '@ao/graphs';
import { defineTool } from '../tools/registry.js';
import { openPgliteStore } from '../store/mod.js';
import type { Store } from '../store/mod.js';
import { handleFor, handlesIn, redactArgs, sealResult, secretPointers, substituteHandles, toolSecrets } from './marks.js';
import { resolveSecretKey } from './key.js';
import { SecretVault } from './vault.js';

const tool = defineTool({
  name: 'login',
  description: 'Log in.',
  effect: 'read',
  input: z.object({
    user: z.string(),
    password: z.string().meta({ secret: true }),
    extra: z.array(z.object({ k: z.string(), v: z.string().meta({ secret: true }) })).optional(),
  }),
  output: z.object({
    session: z.string().meta({ secret: true }),
    user: z.string(),
    nested: z.object({ refresh: z.string().meta({ secret: true }).nullable() }).optional(),
  }),
  async handler() {
    return {};
  },
});

describe('secret marks read from tool schemas', () => {
  it('finds secret values through properties, arrays, records, $refs and unions; a tool without marks has none', () => {
    const sec = toolSecrets(tool);
    expect(
      [
        ...secretPointers(sec.input!, {
          user: 'a',
          password: 'p',
          extra: [
            { k: 'x', v: 'y' },
            { k: 'z', v: 'w' },
          ],
        }),
      ].sort(),
    ).toEqual(['/extra/0/v', '/extra/1/v', '/password']);
    const json = {
      $defs: { Cred: { type: 'object', properties: { token: { type: 'string', 'x-secret': true } } } },
      type: 'object',
      properties: { a: { $ref: '#/$defs/Cred' }, b: { anyOf: [{ type: 'string' }, { type: 'object', properties: { pw: { writeOnly: true } } }] } },
      additionalProperties: { type: 'object', patternProperties: { '^[Aa]uth': { 'x-secret': true } } },
    };
    expect([...secretPointers(json, { a: { token: 't' }, b: { pw: 'p' }, h: { Authorization: 'x', other: 'y' } })].sort()).toEqual([
      '/a/token',
      '/b/pw',
      '/h/Authorization',
    ]);
    const plain = defineTool({ name: 'p', description: '', effect: 'pure', input: z.object({ a: z.string() }), handler: async () => 1 });
    expect(toolSecrets(plain)).toEqual({});
  });

  it('redacts literal secret arguments but keeps handles', () => {
    const h = handleFor('a/1', '/session');
    expect(redactArgs(toolSecrets(tool), { user: 'u', password: 'hunter2' })).toEqual({ user: 'u', password: '[redacted]' });
    expect(redactArgs(toolSecrets(tool), { user: 'u', password: h })).toEqual({ user: 'u', password: h });
  });

  it('seals secret results into deterministic handles (same effect key and place, same handle); null is not a secret', () => {
    const sec = toolSecrets(tool);
    const a = sealResult(sec, 'supervisor/n/2', { session: 's3cr3t', user: 'u', nested: { refresh: null } });
    const b = sealResult(sec, 'supervisor/n/2', { session: 'other', user: 'u' });
    expect(a.shown).toEqual({ session: handleFor('supervisor/n/2', '/session'), user: 'u', nested: { refresh: null } });
    expect((b.shown as { session: string }).session).toBe((a.shown as { session: string }).session);
    expect(a.sealed).toEqual([{ handle: handleFor('supervisor/n/2', '/session'), value: 's3cr3t' }]);
  });

  it('finds handles in any argument, telling secret places from others, and substitutes whole and embedded handles', () => {
    const h = handleFor('x/1', '/t');
    const places = handlesIn(toolSecrets(tool), { user: `me ${h}`, password: `Bearer ${h}` });
    expect(places).toEqual([
      { ptr: '/user', handles: [h], secret: false },
      { ptr: '/password', handles: [h], secret: true },
    ]);
    const values = new Map<string, unknown>([[h, 'tok']]);
    expect(substituteHandles({ user: h, password: `Bearer ${h}` }, new Set(['/password']), values)).toEqual({ user: h, password: 'Bearer tok' });
    expect(substituteHandles({ password: h }, new Set(['/password']), new Map([[h, { a: 1 }]]))).toEqual({ password: { a: 1 } });
  });
});

describe('the vault: AES-256-GCM at rest, bound to run and handle', () => {
  let store: Store;
  const key = randomBytes(32);
  beforeAll(async () => {
    store = await openPgliteStore();
    for (const id of ['r1', 'r2', 'r3']) {
      await store.createRun({
        id,
        graph: 'g',
        graphVersion: 'v',
        input: {},
        budget: {},
        nodes: {},
        traceId: null,
        owner: null,
        leaseMs: 1000,
        ...(id === 'r1'
          ? {}
          : { replay: { of: id === 'r2' ? 'r1' : 'r2', fromStep: 1, mode: 'live', overrides: null, baseSeq: 1, originalVersion: 'v', divergence: null } }),
      });
    }
  });
  afterAll(() => store.close());

  it('round-trips a value; a replay reads its own first, then its originals up the chain', async () => {
    const v = new SecretVault(store, key);
    await v.forRun({ id: 'r1' }).seal([
      { handle: 'secret:1', value: 'one' },
      { handle: 'secret:2', value: { n: 2 } },
    ]);
    await v.forRun({ id: 'r2', replay: { of: 'r1' } }).seal([{ handle: 'secret:2', value: 'two-own' }]);
    const r3 = v.forRun({ id: 'r3', replay: { of: 'r2' } });
    expect(await r3.open(['secret:1', 'secret:2', 'secret:9'])).toEqual(
      new Map<string, unknown>([
        ['secret:1', 'one'],
        ['secret:2', 'two-own'],
      ]),
    );
    expect(await v.forRun({ id: 'r1' }).open(['secret:2'])).toEqual(new Map([['secret:2', { n: 2 }]]));
    const [row] = await store.getSecrets(['r1'], ['secret:1']);
    expect(JSON.stringify(row)).not.toContain('one');
  });

  it('a wrong key, a missing key or an altered row is AO_SECRET_UNREADABLE; sealing without a key is AO_SECRET_KEY_MISSING', async () => {
    const v = new SecretVault(store, key);
    await v.forRun({ id: 'r1' }).seal([{ handle: 'secret:t', value: 'x' }]);
    const code = (e: unknown) => (isAoError(e) ? e.code : String(e));
    await expect(new SecretVault(store, randomBytes(32)).forRun({ id: 'r1' }).open(['secret:t']).catch(code)).resolves.toBe('AO_SECRET_UNREADABLE');
    await expect(new SecretVault(store).forRun({ id: 'r1' }).open(['secret:t']).catch(code)).resolves.toBe('AO_SECRET_UNREADABLE');
    await expect(
      new SecretVault(store)
        .forRun({ id: 'r1' })
        .seal([{ handle: 'secret:u', value: 'x' }])
        .catch(code),
    ).resolves.toBe('AO_SECRET_KEY_MISSING');
    const [row] = await store.getSecrets(['r1'], ['secret:t']);
    // The same ciphertext moved to another handle does not decrypt (the handle is associated data).
    await store.putSecrets([{ ...row!, handle: 'secret:moved' }]);
    await expect(v.forRun({ id: 'r1' }).open(['secret:moved']).catch(code)).resolves.toBe('AO_SECRET_UNREADABLE');
  });
});

describe('the secret key', () => {
  let dir: string;
  beforeAll(async () => (dir = await mkdtemp(join(tmpdir(), 'ao-key-'))));
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('is AO_SECRET_KEY when set, else generated once into the key file (mode 0600), else absent', async () => {
    const configured = randomBytes(32);
    expect(await resolveSecretKey({ configured: configured.toString('base64'), keyFile: join(dir, 'k') })).toEqual(configured);
    const file = join(dir, 'sub', 'secret.key');
    const first = await resolveSecretKey({ keyFile: file });
    expect(first).toHaveLength(32);
    expect(await resolveSecretKey({ keyFile: file })).toEqual(first);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(Buffer.from((await readFile(file, 'utf8')).trim(), 'base64')).toEqual(first);
    expect(await resolveSecretKey({})).toBeUndefined();
    await expect(resolveSecretKey({ configured: 'too-short' })).rejects.toMatchObject({ code: 'AO_CONFIG_INVALID', field: 'AO_SECRET_KEY' });
  });
});
