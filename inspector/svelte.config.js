import adapter from '@sveltejs/adapter-static';

/** @type {import('@sveltejs/kit').Config} */
const config = {
  kit: {
    // SPA: one index.html; the Fastify gateway serves build/ at `/`.
    adapter: adapter({ pages: 'build', assets: 'build' }),
    // Pages live in the URL's hash (`/#/runs/<id>`): the paths themselves (`/runs/<id>`) are the
    // gateway's API on the same origin, and in `vite dev` they are proxied to it.
    router: { type: 'hash' },
  },
};

export default config;
