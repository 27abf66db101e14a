import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{graphs,runtime,actors,gateway,bench}/**/*.test.ts', 'inspector/src/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Files share the machine's Postgres (each uses its own database) and two cores.
    maxWorkers: 2,
  },
});
