import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authGateway } from './auth-harness.js';
import type { AuthGateway } from './auth-harness.js';

/** At least this many generated requests (the issue asks for 10,000). */
const REQUESTS = Number(process.env.AO_FUZZ_REQUESTS ?? 10_000);

const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'] as const;
const ROUTES = [
  '/runs',
  '/runs/{id}',
  '/runs/{id}/events',
  '/runs/{id}/usage',
  '/runs/{id}/cancel',
  '/runs/{id}/signal',
  '/runs/{id}/checkpoints',
  '/runs/{id}/checkpoints/{step}',
  '/runs/{id}/replay',
  '/runs/{id}/diff/{id}',
  '/runs/{id}/stream',
  '/stream',
  '/graphs',
  '/graphs/{name}',
  '/health',
  '/docs/json',
  '/nodes',
];

/** A JSON text nested `depth` levels deep. */
const deep = (depth: number, open: string, close: string) => `${open.repeat(depth)}${close.repeat(depth)}`;

interface World {
  keys: string[];
  ids: string[];
}

/**
 * Requests at every route: real and mutated ids and paths (percent-encoded garbage, NUL, lone
 * surrogates, huge), random query strings, headers (valid, read-only, wrong and missing keys,
 * content types, idempotency keys), and bodies: random JSON, mutated valid bodies, huge strings,
 * deeply nested JSON, truncated JSON and bytes that are not UTF-8.
 */
function requests(w: World): fc.Arbitrary<InjectOptions> {
  const weirdSegment = fc.oneof(
    fc.string({ maxLength: 20 }).map(encodeURIComponent),
    fc.constantFrom('%00', '%ff', '%ED%A0%80', '%', '%zz', '..', '.', '%2e%2e', 'a%2Fb', '%C0%AF', '\u00e9', ''),
    fc.integer().map(String),
    fc.constant('x'.repeat(5000)),
  );
  const id = fc.oneof(fc.constantFrom(...w.ids), fc.uuid(), weirdSegment);
  const step = fc.oneof(fc.nat({ max: 40 }).map(String), fc.constantFrom('-1', '1e9', '99999999999', 'NaN', 'abc', '0x10', ''));
  const name = fc.oneof(fc.constantFrom('triage', 'research-swarm', 'draft-critique', 'nope'), weirdSegment);
  const path = fc.oneof(
    { weight: 2, arbitrary: fc.constant('/runs') },
    {
      weight: 8,
      arbitrary: fc
        .tuple(fc.constantFrom(...ROUTES), id, id, step, name)
        .map(([r, a, b, s, n]) => r.replace('{id}', a).replace('{id}', b).replace('{step}', s).replace('{name}', n)),
    },
    { weight: 1, arbitrary: fc.array(weirdSegment, { maxLength: 5 }).map((p) => `/${p.join('/')}`) },
  );
  const queryValue = fc.oneof(
    fc.string({ maxLength: 30 }).map(encodeURIComponent),
    fc.integer().map(String),
    fc.constantFrom('', '%00', '%ff', '-1', '1001', 'succeeded', 'MA', 'x'.repeat(3000)),
  );
  const query = fc
    .array(fc.tuple(fc.constantFrom('after', 'limit', 'cursor', 'status', 'graph', 'access_token', 'x', 'after[]', '__proto__', 'constructor'), queryValue), {
      maxLength: 4,
    })
    .map((kv) => (kv.length ? `?${kv.map(([k, v]) => `${k}=${v}`).join('&')}` : ''));
  const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 300 });
  // Mostly a valid key (so requests reach the routes behind the door), sometimes a wrong one or none.
  const auth = fc.oneof(
    { weight: 12, arbitrary: fc.constantFrom(...w.keys).map((k) => ({ authorization: `Bearer ${k}` })) },
    { weight: 1, arbitrary: fc.constantFrom(...w.keys).map((k) => ({ 'x-api-key': k })) },
    {
      weight: 1,
      arbitrary: fc.constantFrom('Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', `bearer ao_000000000000_${'A'.repeat(43)}`).map((v) => ({ authorization: v })),
    },
    { weight: 1, arbitrary: printable.map((v) => ({ authorization: v })) },
    { weight: 1, arbitrary: printable.map((v) => ({ 'x-api-key': v })) },
    { weight: 1, arbitrary: fc.constant({}) },
  );
  const contentType = fc.oneof(
    { weight: 8, arbitrary: fc.constant('application/json') },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        'application/json; charset=utf-8',
        'application/json; charset=utf-16',
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/octet-stream',
        '',
      ),
    },
  );
  const headers = fc
    .tuple(
      auth,
      fc.record(
        {
          'content-type': contentType,
          'idempotency-key': fc.oneof(fc.uuid(), printable),
          upgrade: fc.constantFrom('websocket', 'h2c'),
          'content-length': fc.constantFrom('0', '-1', '99999999', 'abc'),
          accept: fc.constantFrom('application/json', '*/*', 'text/html'),
          [`x-${'f'.repeat(3)}`]: printable,
        },
        { requiredKeys: [] },
      ),
    )
    .map(([a, h]) => ({ ...h, ...a, ...(h['content-type'] === undefined ? { 'content-type': 'application/json' } : {}) }));
  const validBody = fc.record(
    { graph: fc.constantFrom('triage', 'research-swarm', 'draft-critique', 'nope'), input: fc.jsonValue({ maxDepth: 3 }) },
    { requiredKeys: ['graph'] },
  );
  const body = fc.oneof(
    { weight: 3, arbitrary: validBody.map((v) => JSON.stringify(v)) },
    { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)) },
    {
      weight: 4,
      arbitrary: fc
        .tuple(validBody, fc.constantFrom('graph', 'input', 'budget', 'fromStep', 'mode', 'overrides', 'extra'), fc.jsonValue({ maxDepth: 3 }))
        .map(([b, k, v]) => JSON.stringify({ ...b, [k]: v })),
    },
    {
      weight: 1,
      arbitrary: fc
        .record({ fromStep: fc.integer({ min: -2, max: 30 }), mode: fc.constantFrom('live', 'recorded', 'lenient', 'x') })
        .map((b) => JSON.stringify(b)),
    },
    { weight: 1, arbitrary: fc.constantFrom(100, 5_000, 100_000).map((d) => `{"graph":"triage","input":${deep(d, '[', ']')}}`) },
    { weight: 1, arbitrary: fc.constantFrom(100, 10_000).map((d) => deep(d, '{"a":', '}').replace(/\}+$/, (m) => `1${m}`)) },
    { weight: 1, arbitrary: fc.constantFrom(200_000, 1_100_000).map((n) => JSON.stringify({ graph: 'triage', input: { blob: 'x'.repeat(n) } })) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        Buffer.from([0x7b, 0x22, 0x67, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0x22, 0x7d]),
        Buffer.from('{"graph":"triage","input":"\xed\xa0\x80"}', 'latin1'),
        Buffer.from('{"graph":"tri'),
      ),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '{"graph":"triage","input":{"x":"a\\u0000b"}}',
        '{"graph":"triage","input":"\\ud800"}',
        '{"__proto__":{"admin":true},"graph":"triage"}',
        '',
      ),
    },
  );
  const method = fc.oneof({ weight: 3, arbitrary: fc.constantFrom('GET', 'POST') }, { weight: 1, arbitrary: fc.constantFrom(...METHODS) });
  return fc
    .record({ method, path, query, headers, body: fc.option(body, { nil: undefined, freq: 4 }), keepLength: fc.boolean() })
    .map(({ method, path: p, query: q, headers: h, body: b, keepLength }) => {
      const withBody = b !== undefined && method !== 'GET' && method !== 'HEAD';
      const { 'content-length': cl, ...rest } = h as Record<string, string | undefined>;
      const length = keepLength ? cl : undefined;
      return {
        method,
        url: `${p}${q}`,
        headers: { ...rest, ...(withBody && length !== undefined ? { 'content-length': length } : {}) } as Record<string, string>,
        ...(withBody ? { payload: b } : {}),
      } as InjectOptions;
    });
}

describe('fuzz: no generated request gets a 5xx, takes the process down, or touches an existing run', () => {
  let gw: AuthGateway;
  let world: World;
  const before = new Map<string, { run: unknown; events: unknown }>();

  /** What a run is, as the API shows it to its tenant (the state that must not change). */
  const snapshot = async (key: string, id: string) => {
    const run = (await gw.as(key, { url: `/runs/${id}` })).json() as Record<string, unknown>;
    const events = (await gw.as(key, { url: `/runs/${id}/events?limit=1000` })).json() as unknown;
    const { updatedAt: _u, budgetUsage: _b, ...rest } = run;
    return { run: rest, events };
  };

  beforeAll(async () => {
    gw = await authGateway({ app: { limits: { rateLimitPerMin: 0, maxActiveRuns: 20 } } });
    const a = await gw.key('acme');
    const b = await gw.key('globex');
    const reader = await gw.key('acme', { readOnly: true });
    const ids: string[] = [];
    for (const [key, body] of [
      [a, { graph: 'triage', input: { intent: 'refund' } }],
      [a, { graph: 'triage', input: { intent: 'question' } }],
      [a, { graph: 'research-swarm', input: { topic: 'fuzz' } }],
      [b, { graph: 'draft-critique', input: { brief: 'fuzz' } }],
      [b, { graph: 'triage', input: { intent: 'refund' } }],
    ] as const) {
      ids.push(await gw.start(key, body));
    }
    for (const id of ids) await gw.rt.engine.waitForRun(id, 60_000);
    for (const [i, id] of ids.entries()) before.set(id, await snapshot(i < 3 ? a : b, id));
    world = { keys: [a, b, reader], ids };
  }, 120_000);
  afterAll(async () => gw?.close());

  it(`${REQUESTS} generated requests at every route: all answered below 500`, async () => {
    let sent = 0;
    const statuses = new Map<number, number>();
    const t0 = performance.now();
    await fc.assert(
      fc.asyncProperty(requests(world), async (req) => {
        sent += 1;
        const res = await gw.app.inject(req);
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        if (res.statusCode >= 500) throw new Error(`${req.method} ${req.url} -> ${res.statusCode} ${res.body.slice(0, 300)}`);
        if (res.statusCode >= 400 && req.method !== 'HEAD' && res.headers['content-type']?.toString().startsWith('application/json')) {
          // Every refusal carries a stable code.
          const code = (res.json() as { error?: { code?: string } }).error?.code;
          if (!code?.startsWith('AO_') && res.statusCode !== 404)
            throw new Error(`${req.method} ${req.url} -> ${res.statusCode} without a code: ${res.body.slice(0, 300)}`);
        }
      }),
      { numRuns: REQUESTS, endOnFailure: true },
    );
    const ms = performance.now() - t0;
    console.log(
      `fuzz: ${sent} requests in ${(ms / 1000).toFixed(1)} s (${Math.round(sent / (ms / 1000))}/s); statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((x, y) => x[0] - y[0])))}`,
    );
    expect(sent).toBeGreaterThanOrEqual(REQUESTS);
    expect([...statuses.keys()].every((s) => s < 500)).toBe(true);
  }, 180_000);

  it('the process is still up and every run from before the fuzzing is intact', async () => {
    expect((await gw.app.inject({ url: '/health' })).json()).toMatchObject({ status: 'ok' });
    for (const [i, id] of world.ids.entries()) {
      expect(await snapshot(i < 3 ? world.keys[0]! : world.keys[1]!, id), id).toEqual(before.get(id));
    }
    // Runs the fuzzing started go on as usual.
    const fresh = await gw.start(world.keys[0]);
    expect((await gw.rt.engine.waitForRun(fresh)).status).toBe('succeeded');
  }, 60_000);
});
