import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{graphs,runtime,actors,gateway,bench,scripts}/**/*.test.ts', 'inspector/src/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    // Safety nets, not budgets: tests wait on events and state. Tests that run `ao` processes one
    // after another set their own (PROCESS_TEST_MS in gateway/test/process.ts); hooks start servers
    // and open stores, which a loaded day makes slow (a server start may take PROCESS_START_MS).
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // Files share the machine's Postgres (each uses its own database) and two cores.
    maxWorkers: 2,
    // No test may reach a real provider, whatever the developer's shell exports (tests point
    // adapters at local fakes explicitly); empty means unset to the config.
    // The runtime's log is quiet in tests: a test that asserts on it captures it (`captureLog` in
    // @ao/runtime/testing); processes a test spawns set their own level (gateway/test/process.ts).
    env: {
      OPENAI_API_KEY: '',
      OPENAI_BASE_URL: '',
      ANTHROPIC_API_KEY: '',
      ANTHROPIC_BASE_URL: '',
      AO_LLM_PROFILES: '',
      AO_MCP_SERVERS: '',
      AO_LOG_LEVEL: 'silent',
    },
  },
});
