import adapter from '@sveltejs/adapter-static';

/** @type {import('@sveltejs/kit').Config} */
const config = {
  kit: {
    // SPA: one index.html; the Fastify gateway serves build/ at `/`. (AO_INSPECTOR_OUT: the
    // browser tests build elsewhere, then swap the result in whole.)
    adapter: adapter({ pages: process.env.AO_INSPECTOR_OUT ?? 'build', assets: process.env.AO_INSPECTOR_OUT ?? 'build' }),
    // Pages live in the URL's hash (`/#/runs/<id>`): the paths themselves (`/runs/<id>`) are the
    // gateway's API on the same origin, and in `vite dev` they are proxied to it.
    router: { type: 'hash' },
    // Assets from `/_app/...`, not relative to the page: the gateway also serves this page at
    // `/runs/<id>` for a browser (see app.html).
    paths: { relative: false },
  },
};

export default config;
