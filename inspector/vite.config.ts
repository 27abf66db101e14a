import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vite';

// In production the gateway serves this app on the same origin as the API.
// In `vite dev`, forward the API paths (and the WebSocket streams) to a gateway running locally.
const gateway = process.env.AO_URL ?? 'http://localhost:4000';
const api = { target: gateway, ws: true };

export default defineConfig({
  plugins: [sveltekit()],
  server: {
    proxy: {
      '/runs': api,
      '/graphs': gateway,
      '/health': gateway,
      '/stream': api,
    },
  },
});
