import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vite';

// In production the gateway serves this app on the same origin as the API.
// In `vite dev`, forward the API paths (and the WebSocket streams) to a gateway running locally.
const gateway = process.env.AO_URL ?? 'http://localhost:4000';
const api = { target: gateway, ws: true };

export default defineConfig({
  plugins: [sveltekit()],
  // `pnpm start` builds this app first: keep that quiet (the build is a few seconds, not a problem).
  build: { rolldownOptions: { checks: { bundlerTimings: false } } },
  server: {
    proxy: {
      '/runs': api,
      '/graphs': gateway,
      '/health': gateway,
      '/stream': api,
    },
  },
});
