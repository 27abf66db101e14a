import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vite';

// In production the gateway serves this app on the same origin as the API.
// In `vite dev`, forward the API paths to a gateway running locally.
const gateway = 'http://localhost:4000';

export default defineConfig({
  plugins: [sveltekit()],
  server: {
    proxy: {
      '/runs': gateway,
      '/graphs': gateway,
      '/health': gateway,
    },
  },
});
