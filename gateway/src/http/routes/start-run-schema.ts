import type { FastifySchemaCompiler, FastifySerializerCompiler } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { unstorable } from '../views.js';

/*
 * POST /runs's schemas, checked without zod when the request has the shape almost every submit
 * has. A burst of 1,000 submits spent ~10% of the server's thread in zod here (the body, the
 * headers copied key by key, the 202 encoded), for the same answer these few lines give. Anything
 * else (a budget override, a field too long, a key that is not there, any doubt) goes to the zod
 * schemas the route declares, so every refusal is zod's, with its code and field as before; the
 * schemas also stay what the OpenAPI document shows.
 */

const IDEMPOTENCY_KEY = /^[\x21-\x7e]+$/;

/** `StartRunBody` without a budget: `{graph, input?}`, `graph` 1-128 characters, `input` storable. */
function plainStartRunBody(b: unknown): boolean {
  if (typeof b !== 'object' || b === null || Array.isArray(b)) return false;
  for (const k in b) if (k !== 'graph' && k !== 'input') return false;
  const { graph, input } = b as { graph?: unknown; input?: unknown };
  return typeof graph === 'string' && graph.length >= 1 && graph.length <= 128 && unstorable(input) === undefined;
}

/** `StartRunHeaders`: no `Idempotency-Key`, or 1-255 printable ASCII characters. */
function plainStartRunHeaders(h: unknown): boolean {
  const key = (h as Record<string, unknown>)['idempotency-key'];
  return key === undefined || (typeof key === 'string' && key.length >= 1 && key.length <= 255 && IDEMPOTENCY_KEY.test(key));
}

/**
 * The route's validator: the request as it came when it has the plain shape (zod would return an
 * equal value: the body has no defaults or transforms without a budget, and the headers pass
 * through), else the zod schema's verdict.
 */
export const startRunValidator: FastifySchemaCompiler<unknown> = (route) => {
  const zod = validatorCompiler(route as Parameters<typeof validatorCompiler>[0]);
  const plain = route.httpPart === 'body' ? plainStartRunBody : route.httpPart === 'headers' ? plainStartRunHeaders : undefined;
  if (!plain) return zod;
  return (data) => (plain(data) ? { value: data } : zod(data));
};

/** The 202's serializer: `{id, status}` written directly when both are strings, else zod's. */
export const acceptedSerializer: FastifySerializerCompiler<unknown> = (route) => {
  const zod = serializerCompiler(route as Parameters<typeof serializerCompiler>[0]);
  return (data) => {
    const a = data as { id?: unknown; status?: unknown };
    return typeof a.id === 'string' && typeof a.status === 'string' ? JSON.stringify({ id: a.id, status: a.status }) : zod(data);
  };
};
