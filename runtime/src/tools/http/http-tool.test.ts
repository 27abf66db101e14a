import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAoError } from '@ao/graphs';
import { redactArgs, sealResult, toolSecrets } from '../../secrets/marks.js';
import { ToolRegistry } from '../registry.js';
import { nonPublicClass, parseAllowList } from './address.js';
import { httpRequestTool } from './http-tool.js';
import type { HttpToolOptions } from './http-tool.js';

const ctx = () => ({ runId: 'r', nodeId: 'n', idempotencyKey: 'r/n/1', signal: new AbortController().signal });

/** A local server; `routes` answer by path. Every request is recorded. */
async function serve(
  routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void>,
): Promise<{ server: Server; base: string; seen: IncomingMessage[] }> {
  const seen: IncomingMessage[] = [];
  const server = createServer((req, res) => {
    seen.push(req);
    const route = routes[new URL(req.url ?? '/', 'http://x').pathname];
    if (route) route(req, res);
    else res.writeHead(404).end('no such route');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

async function call(o: HttpToolOptions, args: Record<string, unknown>): Promise<unknown> {
  const tools = new ToolRegistry().register(httpRequestTool(o));
  return tools.call('http_request', args, ctx());
}

const failure = (p: Promise<unknown>) =>
  p.then(
    () => 'no error',
    (e: unknown) => (isAoError(e) ? { code: e.code, ...(e.details ? { class: e.details.class } : {}) } : String(e)),
  );

describe('http_request', () => {
  let a: Awaited<ReturnType<typeof serve>>;
  let b: Awaited<ReturnType<typeof serve>>;
  beforeAll(async () => {
    b = await serve({ '/whoami': (req, res) => res.end(JSON.stringify({ authorization: req.headers.authorization ?? null })) });
    a = await serve({
      '/hello': (req, res) => res.writeHead(200, { 'content-type': 'text/plain', 'set-cookie': 'sid=abc123; HttpOnly' }).end(`hello ${req.method}`),
      '/echo': (req, res) => {
        let body = '';
        req.on('data', (c: Buffer) => (body += c.toString()));
        req.on('end', () => res.end(JSON.stringify({ method: req.method, body, authorization: req.headers.authorization ?? null })));
      },
      '/big': (_req, res) => res.end('x'.repeat(100_000)),
      '/slow': () => undefined,
      '/to-private': (_req, res) => res.writeHead(302, { location: 'http://10.0.0.1/admin' }).end(),
      '/to-mapped': (_req, res) => res.writeHead(307, { location: 'http://[::ffff:169.254.169.254]/latest/meta-data/' }).end(),
      '/to-localhost': (_req, res) => res.writeHead(302, { location: `http://localhost:${new URL(a.base).port}/hello` }).end(),
      '/to-other-origin': (_req, res) => res.writeHead(302, { location: `${b.base}/whoami` }).end(),
      '/to-hello': (_req, res) => res.writeHead(303, { location: '/hello' }).end(),
    });
  });
  afterAll(async () => {
    a.server.closeAllConnections();
    b.server.closeAllConnections();
    await new Promise((r) => a.server.close(r));
    await new Promise((r) => b.server.close(r));
  });

  it('reaches an allowed local server and returns status, headers and body; GET is read, POST unsafe', async () => {
    const res = (await call({ allow: '127.0.0.1' }, { url: `${a.base}/hello` })) as { status: number; body: string; headers: Record<string, string> };
    expect(res).toMatchObject({ status: 200, body: 'hello GET', truncated: false });
    expect(res.headers['content-type']).toBe('text/plain');
    const posted = (await call({ allow: '127.0.0.0/8' }, { method: 'POST', url: `${a.base}/echo`, body: 'hi' })) as { body: string };
    expect(JSON.parse(posted.body)).toMatchObject({ method: 'POST', body: 'hi' });
    const tools = new ToolRegistry().register(httpRequestTool());
    expect(tools.effectOf('http_request', { url: 'https://x.test' })).toBe('read');
    expect(tools.effectOf('http_request', { method: 'HEAD', url: 'https://x.test' })).toBe('read');
    expect(tools.effectOf('http_request', { method: 'POST', url: 'https://x.test' })).toBe('unsafe');
    expect(tools.effectOf('http_request', { method: 'DELETE', url: 'https://x.test' })).toBe('unsafe');
  });

  it.each([
    ['http://127.0.0.1:9/', 'loopback'],
    ['http://127.9.9.9/', 'loopback'],
    ['http://[::1]:9/', 'loopback'],
    ['http://10.1.2.3/', 'private'],
    ['http://172.16.5.4/', 'private'],
    ['http://192.168.1.1/', 'private'],
    ['http://100.64.0.1/', 'private'],
    ['http://169.254.169.254/latest/meta-data/', 'link-local'],
    ['http://[fe80::1]/', 'link-local'],
    ['http://[fc00::1]/', 'unique-local'],
    ['http://[fd12:3456::1]/', 'unique-local'],
    ['http://224.0.0.1/', 'multicast'],
    ['http://[ff02::1]/', 'multicast'],
    ['http://0.0.0.0:9/', 'unspecified'],
    ['http://[::]:9/', 'unspecified'],
    ['http://[::ffff:127.0.0.1]:9/', 'loopback'],
    ['http://[::ffff:10.0.0.1]/', 'private'],
    ['http://2130706433/', 'loopback'], // 127.0.0.1 written as one number
    ['http://0x7f.1/', 'loopback'],
  ])('refuses %s (%s) before connecting', async (url, cls) => {
    expect(await failure(call({}, { url }))).toEqual({ code: 'AO_HTTP_TOOL_ADDRESS_BLOCKED', class: cls });
  });

  it('refuses a host name that resolves to loopback (localhost) or to a private address, and connects to the address it checked', async () => {
    expect(await failure(call({}, { url: 'http://localhost:9/' }))).toEqual({ code: 'AO_HTTP_TOOL_ADDRESS_BLOCKED', class: 'loopback' });
    const resolve = async (host: string) =>
      host === 'evil.test'
        ? [
            { address: '93.184.215.14', family: 4 },
            { address: '10.0.0.7', family: 4 },
          ]
        : [{ address: '127.0.0.1', family: 4 }];
    // One private address among public ones is enough to refuse.
    expect(await failure(call({ resolve }, { url: 'http://evil.test/' }))).toEqual({ code: 'AO_HTTP_TOOL_ADDRESS_BLOCKED', class: 'private' });
    // `pinned.test` exists only in our resolver: the request reached the server, so the connection
    // went to the checked address, not to a second lookup (no DNS-rebinding window).
    const port = new URL(a.base).port;
    const res = (await call({ resolve, allow: '127.0.0.1' }, { url: `http://pinned.test:${port}/hello` })) as { body: string };
    expect(res.body).toBe('hello GET');
    expect(a.seen.at(-1)!.headers.host).toBe(`pinned.test:${port}`);
  });

  it('checks every redirect hop: a redirect to a private or IPv4-mapped metadata address is refused; allowed hops are followed', async () => {
    const allow = '127.0.0.1';
    expect(await failure(call({ allow }, { url: `${a.base}/to-private` }))).toEqual({ code: 'AO_HTTP_TOOL_ADDRESS_BLOCKED', class: 'private' });
    expect(await failure(call({ allow }, { url: `${a.base}/to-mapped` }))).toEqual({ code: 'AO_HTTP_TOOL_ADDRESS_BLOCKED', class: 'link-local' });
    expect(await call({ allow }, { method: 'POST', url: `${a.base}/to-hello`, body: 'x' })).toMatchObject({ status: 200, body: 'hello GET', redirects: 1 });
    expect(await failure(call({ allow, maxRedirects: 0 }, { url: `${a.base}/to-private` }).then((r) => (r as { status: number }).status))).toBe('no error');
  });

  it('drops credential headers on a redirect to another origin', async () => {
    const res = (await call({ allow: '127.0.0.1' }, { url: `${a.base}/to-other-origin`, headers: { Authorization: 'Bearer t0k' } })) as { body: string };
    expect(JSON.parse(res.body)).toEqual({ authorization: null });
    const same = (await call({ allow: '127.0.0.1' }, { url: `${a.base}/echo`, headers: { Authorization: 'Bearer t0k' } })) as { body: string };
    expect(JSON.parse(same.body)).toMatchObject({ authorization: 'Bearer t0k' });
  });

  it('cuts the body at the size cap, and times out a server that does not answer (AO_TOOL_TIMEOUT)', async () => {
    const big = (await call({ allow: '127.0.0.1', maxResponseBytes: 1000 }, { url: `${a.base}/big` })) as { body: string; truncated: boolean };
    expect(big.body).toHaveLength(1000);
    expect(big.truncated).toBe(true);
    expect(await failure(call({ allow: '127.0.0.1', timeoutMs: 200 }, { url: `${a.base}/slow` }))).toEqual({ code: 'AO_TOOL_TIMEOUT' });
  });

  it('marks credential headers (any case) as secret arguments and set-cookie as a secret result', async () => {
    const sec = toolSecrets(httpRequestTool());
    expect(redactArgs(sec, { url: 'https://x.test', headers: { Authorization: 'Bearer abc', 'X-Api-Key': 'k', Accept: 'text/plain' } })).toEqual({
      url: 'https://x.test',
      headers: { Authorization: '[redacted]', 'X-Api-Key': '[redacted]', Accept: 'text/plain' },
    });
    const res = await call({ allow: '127.0.0.1' }, { url: `${a.base}/hello` });
    const { shown, sealed } = sealResult(sec, 'n/1', res);
    expect(sealed.map((s) => s.value)).toEqual([['sid=abc123; HttpOnly']]);
    expect(JSON.stringify(shown)).not.toContain('abc123');
  });
});

describe('address classes and the allow-list', () => {
  it('classifies public addresses as public', () => {
    for (const ip of ['8.8.8.8', '93.184.215.14', '2606:4700:4700::1111', '::ffff:8.8.8.8']) expect(nonPublicClass(ip), ip).toBeUndefined();
    expect(nonPublicClass('64:ff9b::10.0.0.1')).toBe('private');
    expect(nonPublicClass('255.255.255.255')).toBe('reserved');
  });

  it('parses hosts, addresses and CIDRs, and refuses anything else with AO_CONFIG_INVALID', () => {
    const allow = parseAllowList('127.0.0.1, 10.0.0.0/8 ,internal.example.com,::1,fd00::/8');
    expect([...allow.hosts]).toEqual(['internal.example.com']);
    expect(allow.addresses.check('10.2.3.4')).toBe(true);
    expect(allow.addresses.check('fd00::5', 'ipv6')).toBe(true);
    for (const bad of ['10.0.0.0/33', 'http://x', 'a b']) expect(() => parseAllowList(bad), bad).toThrow(/AO_HTTP_TOOL_ALLOW/);
  });
});
