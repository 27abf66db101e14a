import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';

/** The API paths a browser may open as pages: a run, the runs, the graphs and a graph. */
const PAGE_PATH = /^\/(runs|graphs)(\/[A-Za-z0-9_.:-]{1,128})?\/?$/;

/** The weight (`q`) an Accept header gives a media type: its best matching entry, exact over `type/*` over `*\/*`. */
function weight(accept: string, type: string): { q: number; exact: boolean } {
  const [major] = type.split('/');
  let best = { q: 0, specificity: -1, exact: false };
  for (const part of accept.split(',')) {
    const [range = '', ...params] = part.trim().toLowerCase().split(';');
    const specificity = range === type ? 2 : range === `${major}/*` ? 1 : range === '*/*' ? 0 : -1;
    if (specificity < 0 || specificity < best.specificity) continue;
    const qp = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qp ? Number(qp.slice(2)) : 1;
    best = { q: Number.isFinite(q) ? q : 0, specificity, exact: specificity === 2 };
  }
  return { q: best.q, exact: best.exact };
}

/**
 * Whether an Accept header asks for a page rather than JSON: it names `text/html` itself and
 * weighs it above `application/json` (a browser's navigation does; `curl`'s and `fetch`'s `*\/*`
 * does not, nor does a tie).
 */
export function prefersHtml(accept: string | undefined): boolean {
  if (!accept) return false;
  const html = weight(accept, 'text/html');
  return html.exact && html.q > 0 && html.q > weight(accept, 'application/json').q;
}

/**
 * Content negotiation on the API's addresses: `GET /runs/<id>` (and `/runs`, `/graphs`,
 * `/graphs/<name>`) opened in a browser answers with the inspector, whose start-up moves the path
 * into its hash route (`/#/runs/<id>`; see inspector/src/app.html); an API client keeps its JSON.
 * The page is static and asks for nothing: the data it then loads goes through the API's auth.
 * Registered before the auth guard, so a browser without a key still gets the page.
 */
export function registerPages(app: FastifyInstance, inspectorDir: string): void {
  app.addHook('onRequest', async (req, reply) => {
    if (req.method !== 'GET' || !PAGE_PATH.test(req.url.split('?')[0]!)) return;
    void reply.header('vary', 'Accept');
    if (!prefersHtml(req.headers.accept) || req.headers.upgrade) return;
    // Read each time: a rebuild swaps the folder under a running server.
    const html = await readFile(join(inspectorDir, 'index.html'), 'utf8').catch(() => undefined);
    if (html === undefined) return;
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-cache').send(html);
  });
}
