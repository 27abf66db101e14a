import { lookup } from 'node:dns/promises';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { LookupFunction } from 'node:net';
import { z } from 'zod';
import { AoError, isAoError } from '@ao/graphs';
import { defineTool } from '../registry.js';
import type { ToolDefinition } from '../registry.js';
import { allowsAddress, nonPublicClass, parseAllowList } from './address.js';
import type { HttpAllowList } from './address.js';

export interface HttpToolOptions {
  /** Hosts, addresses and CIDRs that may be reached although not public (AO_HTTP_TOOL_ALLOW). */
  allow?: string | readonly string[];
  /** Longest a request (each redirect hop) may take, ms (default 15 s). */
  timeoutMs?: number;
  /** The response body is cut at this many bytes (default 64 KiB); `truncated` says so. */
  maxResponseBytes?: number;
  /** Redirects followed, each hop checked like the first (default 5; 0 = none followed). */
  maxRedirects?: number;
  /** Request headers whose values are secret, by name, in any case (default: the usual credential headers). */
  secretHeaders?: readonly string[];
  /** Resolve a host name (tests); default `dns.lookup` with all addresses. */
  resolve?: (host: string) => Promise<Array<{ address: string; family: number }>>;
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
const CREDENTIAL_HEADERS = ['authorization', 'proxy-authorization', 'cookie', 'x-api-key', 'api-key', 'x-auth-token'];
const MAX_BODY = 1_000_000;

/** A case-insensitive, anchored pattern for a header name (JSON schema patterns have no `i` flag). */
const anyCase = (name: string) =>
  `^${[...name].map((c) => (/[a-z]/i.test(c) ? `[${c.toLowerCase()}${c.toUpperCase()}]` : c.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&'))).join('')}$`;

const Input = z.object({
  method: z.enum(METHODS).default('GET'),
  url: z.url({ protocol: /^https?$/ }).max(8192),
  headers: z.record(z.string().min(1).max(256), z.string().max(8192)).optional(),
  body: z.string().max(MAX_BODY).optional(),
});

/**
 * `http_request`: an HTTP(S) request to a public address. Host names are resolved here and the
 * connection goes to the address that was checked (no DNS-rebinding window); every redirect hop
 * is checked again; loopback, private, link-local, unique-local, multicast and unspecified
 * addresses (IPv4 and IPv6, IPv4-mapped included) are refused with AO_HTTP_TOOL_ADDRESS_BLOCKED
 * unless the allow-list names them. Credential headers (`authorization`, `cookie`, ...) are
 * secret arguments: redacted in the log, and the only place a secret handle may be passed; the
 * response's `set-cookie` is a secret result. GET, HEAD and OPTIONS are `read`, the others `unsafe`.
 *
 * @example
 * const tools = new ToolRegistry().register(httpRequestTool({ allow: '10.1.0.0/16' }));
 */
export function httpRequestTool(o: HttpToolOptions = {}): ToolDefinition<typeof Input> {
  const allow = parseAllowList(o.allow);
  const timeoutMs = o.timeoutMs ?? 15_000;
  const maxBytes = o.maxResponseBytes ?? 65_536;
  const maxRedirects = o.maxRedirects ?? 5;
  const secretNames = (o.secretHeaders ?? CREDENTIAL_HEADERS).map((h) => h.toLowerCase());
  const resolve = o.resolve ?? ((host: string) => lookup(host, { all: true, verbatim: true }));
  return defineTool({
    name: 'http_request',
    description:
      'Make an HTTP request to a public web address and return the status, headers and body (text, cut at ' +
      `${maxBytes} bytes). Put credentials only in the headers ${secretNames.join(', ')}; a secret handle (secret:...) may be used there, e.g. "Bearer secret:...".`,
    input: Input,
    parameters: {
      type: 'object',
      properties: {
        method: { type: 'string', enum: [...METHODS], default: 'GET' },
        url: { type: 'string', format: 'uri', description: 'http:// or https:// URL.' },
        headers: {
          type: 'object',
          description: 'Request headers.',
          patternProperties: Object.fromEntries(secretNames.map((h) => [anyCase(h), { type: 'string', 'x-secret': true }])),
          additionalProperties: { type: 'string' },
        },
        body: { type: 'string', description: 'Request body (for POST, PUT, PATCH).' },
      },
      required: ['url'],
    },
    outputParameters: { type: 'object', properties: { headers: { type: 'object', properties: { 'set-cookie': { 'x-secret': true } } } } },
    effect: 'unsafe',
    effectOf: (args) => {
      const m = String((args as { method?: unknown } | null)?.method ?? 'GET').toUpperCase();
      return m === 'GET' || m === 'HEAD' || m === 'OPTIONS' ? 'read' : 'unsafe';
    },
    async handler(args, ctx) {
      const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)]);
      let url = new URL(args.url);
      let method: string = args.method;
      let body = args.body;
      let headers = { ...args.headers };
      for (let hop = 0; ; hop++) {
        const address = await checkedAddress(url, allow, resolve);
        let res: Awaited<ReturnType<typeof send>>;
        try {
          res = await send(url, address, method, headers, body, signal, maxBytes);
        } catch (e) {
          if (isAoError(e)) throw e;
          if (signal.aborted && !ctx.signal.aborted)
            throw new AoError('AO_TOOL_TIMEOUT', `http_request to ${url.origin} got no answer within ${timeoutMs} ms`, { retryable: true });
          throw e;
        }
        const location = res.headers.location;
        if (res.status >= 300 && res.status < 400 && typeof location === 'string' && maxRedirects > 0) {
          if (hop >= maxRedirects)
            throw new AoError('AO_TOOL_FAILED', `http_request: more than ${maxRedirects} redirects (last to ${location})`, { details: { url: url.href } });
          const next = new URL(location, url);
          if (next.protocol !== 'http:' && next.protocol !== 'https:')
            throw new AoError('AO_TOOL_FAILED', `http_request: redirect to a ${next.protocol} URL is not followed`);
          // Credentials go only to the origin they were written for.
          if (next.origin !== url.origin) headers = Object.fromEntries(Object.entries(headers).filter(([k]) => !secretNames.includes(k.toLowerCase())));
          if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
            method = 'GET';
            body = undefined;
          }
          url = next;
          continue;
        }
        return { status: res.status, url: url.href, headers: res.headers, body: res.body, truncated: res.truncated, ...(hop ? { redirects: hop } : {}) };
      }
    },
  });
}

/** The address to connect to for `url`: resolved once, every address checked, the first one used. */
async function checkedAddress(url: URL, allow: HttpAllowList, resolve: NonNullable<HttpToolOptions['resolve']>): Promise<{ address: string; family: number }> {
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  let addresses: Array<{ address: string; family: number }>;
  if (isIP(host)) addresses = [{ address: host, family: isIP(host) }];
  else {
    try {
      addresses = await resolve(host);
    } catch (e) {
      throw new AoError('AO_TOOL_FAILED', `http_request: cannot resolve ${host}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
        retryable: true,
        details: { host },
      });
    }
    if (!addresses.length) throw new AoError('AO_TOOL_FAILED', `http_request: ${host} has no address`, { details: { host } });
  }
  const hostAllowed = allow.hosts.has(host.replace(/\.$/, ''));
  for (const a of addresses) {
    const cls = nonPublicClass(a.address);
    if (cls && !hostAllowed && !allowsAddress(allow, a.address)) {
      throw new AoError(
        'AO_HTTP_TOOL_ADDRESS_BLOCKED',
        `http_request refused ${url.origin}: ${host === a.address ? '' : `${host} resolves to `}${a.address}, a ${cls} address (allow it with AO_HTTP_TOOL_ALLOW)`,
        {
          details: { host, address: a.address, class: cls },
        },
      );
    }
  }
  return addresses[0]!;
}

/** One request to the checked address (TLS still verifies the host name), its body read up to `maxBytes`. */
function send(
  url: URL,
  to: { address: string; family: number },
  method: string,
  headers: Record<string, string>,
  body: string | undefined,
  signal: AbortSignal,
  maxBytes: number,
) {
  // The connection goes to the address that was checked, never to a second lookup's answer.
  const pinned: LookupFunction = (_host, opts, cb) => {
    if ((opts as { all?: boolean }).all) (cb as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [to]);
    else cb(null, to.address, to.family);
  };
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise<{ status: number; headers: Record<string, string | string[]>; body: string; truncated: boolean }>((resolve, reject) => {
    const req = lib.request(
      url,
      { method, headers: { ...headers, ...(body !== undefined ? { 'content-length': String(Buffer.byteLength(body)) } : {}) }, lookup: pinned, signal },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        let truncated = false;
        const done = () => {
          const out: Record<string, string | string[]> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out[k] = v;
          resolve({ status: res.statusCode ?? 0, headers: out, body: Buffer.concat(chunks).toString('utf8'), truncated });
        };
        res.on('data', (c: Buffer) => {
          if (truncated) return;
          const room = maxBytes - size;
          if (c.length > room) {
            chunks.push(c.subarray(0, room));
            size = maxBytes;
            truncated = true;
            done();
            res.destroy();
            return;
          }
          chunks.push(c);
          size += c.length;
        });
        res.on('end', () => !truncated && done());
        res.on('error', (e) => !truncated && reject(e));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
