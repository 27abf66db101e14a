import { describe, expect, it } from 'vitest';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { acceptedSerializer, startRunValidator } from '../src/http/routes/start-run-schema.js';
import { Accepted, StartRunBody, StartRunHeaders } from '../src/http/views.js';

type Compiled = (data: unknown) => { value?: unknown; error?: unknown };
const route = (schema: unknown, httpPart: string) => ({ schema, method: 'POST', url: '/runs', httpPart }) as Parameters<typeof validatorCompiler>[0];
const verdict = (r: { value?: unknown; error?: unknown }) => (r.error ? { error: JSON.stringify(r.error) } : { value: r.value });

// POST /runs checks a plain submit without zod: for every request it must say what zod says.
describe('POST /runs schemas without zod for a plain submit', () => {
  const bodies: unknown[] = [
    { graph: 'triage' },
    { graph: 'triage', input: { intent: 'refund', n: [1, 2, { deep: true }] } },
    { input: null, graph: 'g' },
    { graph: 'x'.repeat(128), input: 'text' },
    { graph: 'x'.repeat(129) },
    { graph: '' },
    { graph: 7 },
    {},
    { graph: 'triage', extra: 1 },
    { graph: 'triage', budget: { tokens: 10 } },
    { graph: 'triage', budget: { tokens: -1 } },
    { graph: 'triage', input: { x: 'a\u0000b' } },
    { graph: 'triage', input: { 'a\u0000': 1 } },
    { graph: 'triage', input: 'lone \ud800' },
    { graph: 'triage', input: JSON.parse('['.repeat(70) + ']'.repeat(70)) as unknown },
    null,
    [],
    'triage',
  ];
  const headers: unknown[] = [
    {},
    { 'idempotency-key': 'k-1', authorization: 'Bearer x' },
    { 'idempotency-key': '' },
    { 'idempotency-key': 'has space' },
    { 'idempotency-key': 'k'.repeat(255) },
    { 'idempotency-key': 'k'.repeat(256) },
    { 'idempotency-key': 'é' },
  ];

  it('a body is accepted, with an equal value, or refused with the same error', () => {
    const fast = startRunValidator(route(StartRunBody, 'body')) as Compiled;
    const zod = validatorCompiler(route(StartRunBody, 'body')) as Compiled;
    for (const b of bodies) expect(verdict(fast(b)), JSON.stringify(b)).toEqual(verdict(zod(b)));
  });

  it('the headers are accepted, with an equal value, or refused with the same error', () => {
    const fast = startRunValidator(route(StartRunHeaders, 'headers')) as Compiled;
    const zod = validatorCompiler(route(StartRunHeaders, 'headers')) as Compiled;
    for (const h of headers) expect(verdict(fast(h)), JSON.stringify(h)).toEqual(verdict(zod(h)));
  });

  it('the 202 is written as zod writes it, and a malformed one still fails as it did', () => {
    const fast = acceptedSerializer(route(Accepted, 'response'));
    const zod = serializerCompiler(route(Accepted, 'response'));
    for (const a of [
      { id: 'run-1', status: 'pending' },
      { status: 'pending', id: 'run-2', extra: true },
    ])
      expect(fast(a)).toBe(zod(a));
    expect(() => fast({ id: 1, status: 'pending' })).toThrow();
  });
});
