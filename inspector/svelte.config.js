import adapter from '@sveltejs/adapter-static';

/** @type {import('@sveltejs/kit').Config} */
const config = {
  kit: {
    // SPA: one index.html fallback; the Fastify gateway serves build/ at `/`.
    adapter: adapter({ pages: 'build', assets: 'build', fallback: 'index.html' }),
  },
};

export default config;
