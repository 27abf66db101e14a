import { describe, it, expect } from 'vitest';
import { z } from 'zod';
import { AoError, isAoError } from '@ao/graphs';
import { ToolRegistry, defineTool, type ToolContext } from './registry.js';
import { builtinTools, stripeRefund, webSearch } from './builtin/mod.js';

const ctx = (idempotencyKey = 'run-1/refund/0'): ToolContext => ({
  runId: 'run-1',
  nodeId: 'refund',
  idempotencyKey,
  signal: new AbortController().signal,
});

function registry(): ToolRegistry {
  const r = new ToolRegistry();
  for (const t of builtinTools) r.register(t);
  return r;
}

/** Run `fn`, expecting an AoError, and return it. */
async function aoError(fn: () => unknown): Promise<AoError> {
  try {
    await fn();
  } catch (e) {
    if (isAoError(e)) return e;
    throw e;
  }
  throw new Error('expected an AoError');
}

describe('ToolRegistry', () => {
  it('lists registered tools and rejects a duplicate name as a wiring mistake', () => {
    const r = registry();
    expect(r.names()).toEqual(['web_search', 'stripe_refund', 'noop', 'http_request']);
    expect(r.has('web_search')).toBe(true);
    expect(r.get('stripe_refund')?.effect).toBe('idempotent');
    expect(() => r.register(webSearch)).toThrow(TypeError);
  });

  it("offers each tool's parameters as its own JSON Schema on every call, in two registries with same-named tools of different schemas", () => {
    const echo = (input: z.ZodType) => defineTool({ name: 'echo', description: 'Echo.', effect: 'pure', input, handler: async (a) => a });
    const a = new ToolRegistry().register(echo(z.object({ text: z.string() })));
    const b = new ToolRegistry().register(echo(z.object({ count: z.number().int() })));
    for (let i = 0; i < 2; i++) {
      expect(a.specs(['echo'])[0]!.parameters).toMatchObject({ type: 'object', properties: { text: { type: 'string' } }, required: ['text'] });
      expect(b.specs(['echo'])[0]!.parameters).toMatchObject({ type: 'object', properties: { count: { type: 'integer' } }, required: ['count'] });
    }
    expect(a.specs(['echo'])[0]!.parameters).not.toHaveProperty('$schema');
  });

  it('names the missing field when chargeId is absent', async () => {
    const e = await aoError(() => registry().validate('stripe_refund', { amountCents: 500, reason: 'duplicate' }));
    expect(e.code).toBe('AO_TOOL_ARGS_INVALID');
    expect(e.field).toBe('chargeId');
    expect(e.message).toContain('chargeId');
  });

  it('names amountCents when it has the wrong type', async () => {
    const e = await aoError(() => registry().validate('stripe_refund', { chargeId: 'ch_1', amountCents: '500', reason: 'duplicate' }));
    expect(e.code).toBe('AO_TOOL_ARGS_INVALID');
    expect(e.field).toBe('amountCents');
    expect(e.details).toMatchObject({ tool: 'stripe_refund' });
  });

  it('returns parsed arguments with defaults applied', () => {
    expect(registry().validate('web_search', { query: 'actors' })).toEqual({ query: 'actors', maxResults: 3 });
  });

  it('never calls the handler with bad arguments', async () => {
    let calls = 0;
    const r = new ToolRegistry().register(
      defineTool({
        name: 'count',
        description: 'Counts calls.',
        effect: 'pure',
        input: z.object({ n: z.number() }),
        handler: async ({ n }) => (calls++, n),
      }),
    );
    const e = await aoError(() => r.call('count', { n: 'one' }, ctx()));
    expect(e.code).toBe('AO_TOOL_ARGS_INVALID');
    expect(e.field).toBe('n');
    expect(calls).toBe(0);
    expect(await r.call('count', { n: 2 }, ctx())).toBe(2);
    expect(calls).toBe(1);
  });

  it('reports an unknown tool with AO_TOOL_NOT_FOUND', async () => {
    const e = await aoError(() => registry().call('nope', {}, ctx()));
    expect(e.code).toBe('AO_TOOL_NOT_FOUND');
    expect(e.field).toBe('name');
    expect((await aoError(() => registry().specs(['nope']))).code).toBe('AO_TOOL_NOT_FOUND');
  });

  it('wraps a throwing handler in AO_TOOL_FAILED with the cause and tool name', async () => {
    const boom = new Error('provider down');
    const r = new ToolRegistry().register(
      defineTool({
        name: 'flaky',
        description: 'Fails.',
        effect: 'read',
        input: z.object({}),
        handler: async () => {
          throw boom;
        },
      }),
    );
    const e = await aoError(() => r.call('flaky', {}, ctx()));
    expect(e.code).toBe('AO_TOOL_FAILED');
    expect(e.cause).toBe(boom);
    expect(e.details).toMatchObject({ tool: 'flaky' });
    expect(e.message).toContain('provider down');
    expect(e.retryable).toBe(true);
  });

  it('lets an AoError thrown by a handler pass through unchanged', async () => {
    const own = new AoError('AO_TOOL_NOT_FOUND', 'inner');
    const r = new ToolRegistry().register(
      defineTool({
        name: 'inner',
        description: 'Throws its own.',
        effect: 'unsafe',
        input: z.object({}),
        handler: async () => {
          throw own;
        },
      }),
    );
    expect(await aoError(() => r.call('inner', {}, ctx()))).toBe(own);
  });

  it('offers specs whose parameters are JSON schemas of the input', () => {
    const [search, refund] = registry().specs(['web_search', 'stripe_refund']);
    expect(search?.name).toBe('web_search');
    expect(search?.description).toBeTruthy();
    expect(search?.parameters).toMatchObject({
      type: 'object',
      properties: { query: { type: 'string', minLength: 1, maxLength: 500 }, maxResults: { type: 'integer', default: 3 } },
      required: ['query'],
    });
    expect(refund?.parameters).toMatchObject({
      type: 'object',
      properties: { reason: { enum: ['requested_by_customer', 'duplicate', 'fraudulent'] }, amountCents: { type: 'integer' } },
      required: ['chargeId', 'amountCents', 'reason'],
    });
  });
});

describe('builtin tools (offline)', () => {
  const refundArgs = { chargeId: 'ch_123', amountCents: 500, reason: 'requested_by_customer' };

  it('stripe_refund gives the same refund id for the same idempotency key', async () => {
    const r = registry();
    const a = await r.call('stripe_refund', refundArgs, ctx('k1'));
    const b = await r.call('stripe_refund', refundArgs, ctx('k1'));
    const c = await r.call('stripe_refund', refundArgs, ctx('k2'));
    expect(a).toEqual(b);
    expect(a).toMatchObject({ offline: true, chargeId: 'ch_123', amountCents: 500, status: 'succeeded' });
    expect((a as { refundId: string }).refundId).toMatch(/^re_offline_[0-9a-f]+$/);
    expect((c as { refundId: string }).refundId).not.toBe((a as { refundId: string }).refundId);
    expect(stripeRefund.effect).toBe('idempotent');
  });

  it('web_search returns maxResults deterministic results marked offline', async () => {
    const r = registry();
    const a = (await r.call('web_search', { query: 'durable actors', maxResults: 4 }, ctx())) as {
      offline: boolean;
      note: string;
      results: Array<{ title: string; url: string; snippet: string }>;
    };
    expect(a.offline).toBe(true);
    expect(a.note).toMatch(/no web search was made/);
    expect(a.results).toHaveLength(4);
    expect(a.results.every((x) => x.url.startsWith('https://example.invalid/'))).toBe(true);
    expect(await r.call('web_search', { query: 'durable actors', maxResults: 4 }, ctx())).toEqual(a);
  });

  it('noop accepts any object', async () => {
    expect(await registry().call('noop', { anything: 1 }, ctx())).toEqual({ ok: true });
  });
});
