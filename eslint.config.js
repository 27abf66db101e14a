// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';

/** Packages in layer order, top first: a package may import only those below it (DESIGN.md). */
const layers = ['@ao/gateway', '@ao/actors', '@ao/runtime', '@ao/graphs'];
/**
 * @param {string} pkg
 * @returns {import('eslint').Linter.RulesRecord}
 */
const layerRule = (pkg) => {
  const above = layers.slice(0, layers.indexOf(pkg) + 1).filter((p) => p !== pkg);
  return {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          { group: ['@ao/*/src/*', '@ao/*/src'], message: 'Import a package by its public face, not its src/ internals.' },
          ...(above.length ? [{ group: above, message: `Arrows point down: ${pkg} may not import ${above.join(', ')}.` }] : []),
        ],
      },
    ],
  };
};

/**
 * `Date.now()` and `new Date()` read the wall clock. Runtime and actors read time through the Clock
 * port (runtime/src/clock), so a test or a replay can give them another; a site that means wall
 * time says so by reading `systemClock`.
 * @type {import('eslint').Rule.RuleModule}
 */
const noWallClock = {
  meta: {
    type: 'problem',
    schema: [],
    messages: {
      read: 'Read time through the Clock port: clock.now(), isoNow(clock), or systemClock where wall time is meant (runtime/src/clock).',
    },
  },
  create: (context) => {
    /** @param {import('eslint').Rule.Node} node */
    const report = (node) => context.report({ node, messageId: 'read' });
    return {
      "MemberExpression[object.name='Date'][property.name='now']": report,
      "NewExpression[callee.name='Date'][arguments.length=0]": report,
    };
  },
};

/**
 * `env.payload as X` claims a payload's type without checking it. Envelope payloads are typed by
 * their schemas (runtime/src/envelope/payloads.ts) and narrowed with the union's helpers, which read
 * the check made where the envelope entered: isEnvelopeOf, payloadOf, messagePayload,
 * requirePayload, or payloadField for one field of any shape. Also `(env.payload ?? {}) as X`.
 * @type {import('eslint').Rule.RuleModule}
 */
const noPayloadCast = {
  meta: {
    type: 'problem',
    schema: [],
    messages: {
      cast: 'Do not cast a payload: narrow it with isEnvelopeOf / payloadOf / messagePayload / requirePayload, or read one field with payloadField (runtime/src/envelope/typed.ts).',
    },
  },
  create: (context) => {
    /** @param {import('eslint').Rule.Node} node */
    const report = (node) => context.report({ node, messageId: 'cast' });
    const payload = "MemberExpression[property.name='payload']";
    return {
      [`TSAsExpression > ${payload}.expression`]: report,
      [`TSTypeAssertion > ${payload}.expression`]: report,
      [`TSAsExpression > LogicalExpression.expression > ${payload}.left`]: report,
      [`TSAsExpression > ChainExpression.expression > ${payload}`]: report,
    };
  },
};

/**
 * The gateway and the bench read a node's state through the engine's named ports (issue 23):
 * `engine.queries` (runs, events, checkpoints, usage), `engine.apiKeys`, `engine.importRun`,
 * `engine.storeKind`; never its store. Flags `x.store.y` (a store's method reached through what
 * holds it) and `engine.store` / `rt.store` (the store behind an engine or a runtime, passed on).
 * A CLI command that opens a store of its own (`ao keys`, `ao verify`) holds it in a local.
 * @type {import('eslint').Rule.RuleModule}
 */
const noStoreReach = {
  meta: {
    type: 'problem',
    schema: [],
    messages: {
      reach: "Read through the engine's ports (engine.queries, engine.apiKeys, engine.importRun, engine.storeKind), not its store.",
    },
  },
  create: (context) => {
    /** @param {import('eslint').Rule.Node} node */
    const report = (node) => context.report({ node, messageId: 'reach' });
    return {
      "MemberExpression[object.type='MemberExpression'][object.property.name='store']": report,
      "MemberExpression[property.name='store'][object.name=/^(engine|rt|runtime)$/]": report,
      "MemberExpression[property.name='store'][object.property.name=/^(engine|rt|runtime)$/]": report,
    };
  },
};

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      '**/build/**',
      '**/.svelte-kit/**',
      'inspector/*',
      '!inspector/src',
      'inspector/src/**/*.svelte',
      'inspector/src/**/*.html',
      'inspector/src/lib/api/generated.ts',
      '**/drizzle/**',
      '.ao/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: false } },
    plugins: { 'import-x': importX },
    rules: {
      'import-x/no-cycle': ['error', { maxDepth: 10, ignoreExternal: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'off',
    },
    settings: { 'import-x/resolver': { node: { extensions: ['.ts', '.js'] } }, 'import-x/ignore': ['node_modules'] },
  },
  {
    // One logger (runtime/src/log): no console in runtime, actors or gateway code, but for the
    // CLI's own output and test helpers.
    files: ['runtime/src/**/*.ts', 'actors/src/**/*.ts', 'gateway/src/**/*.ts'],
    ignores: ['gateway/src/cli/**', '**/testing/**', '**/*.test.ts'],
    rules: { 'no-console': 'error' },
  },
  {
    // Time through the Clock port (STYLE.md 10); the clock adapter and test code read it directly.
    files: ['runtime/src/**/*.ts', 'actors/src/**/*.ts'],
    ignores: ['runtime/src/clock/**', '**/testing/**', '**/*.test.ts', '**/conformance.ts'],
    plugins: { ao: { rules: { 'no-wall-clock': noWallClock } } },
    rules: { 'ao/no-wall-clock': 'error' },
  },
  {
    // Typed envelopes (issue 23): no payload casts in source; tests build and read payloads as they like.
    files: ['**/*.ts'],
    ignores: ['**/testing/**', '**/*.test.ts', '**/test/**', '**/conformance.ts'],
    plugins: { envelopes: { rules: { 'no-payload-cast': noPayloadCast } } },
    rules: { 'envelopes/no-payload-cast': 'error' },
  },
  {
    // The gateway and the bench never reach the engine's store (issue 23); their tests may.
    files: ['gateway/src/**/*.ts', 'bench/src/**/*.ts'],
    ignores: ['**/*.test.ts', '**/testing/**'],
    plugins: { ports: { rules: { 'no-store-reach': noStoreReach } } },
    rules: { 'ports/no-store-reach': 'error' },
  },
  { files: ['graphs/**/*.ts'], rules: layerRule('@ao/graphs') },
  { files: ['runtime/**/*.ts'], rules: layerRule('@ao/runtime') },
  { files: ['actors/**/*.ts'], rules: layerRule('@ao/actors') },
  { files: ['gateway/**/*.ts'], rules: layerRule('@ao/gateway') },
  {
    // Only an adapter's own folder imports its client library (DESIGN.md, STYLE.md 4).
    files: ['**/*.ts'],
    ignores: [
      'runtime/src/actor-system/**',
      'runtime/src/store/pg/**',
      'runtime/src/store/pglite/**',
      'runtime/src/tools/mcp/**',
      'runtime/src/testing/**',
      'runtime/drizzle.config.ts',
      '**/*.test.ts',
      'tests/**',
    ],
    rules: {
      'no-restricted-syntax': [
        'error',
        { selector: "ImportDeclaration[source.value='nact']", message: 'Only runtime/src/actor-system imports nact.' },
        { selector: "ImportDeclaration[source.value='pg']", message: 'Only runtime/src/store/pg imports pg.' },
        { selector: 'ImportDeclaration[source.value=/^@electric-sql\\/pglite/]', message: 'Only runtime/src/store/pglite imports PGlite.' },
        {
          selector: 'ImportDeclaration[source.value=/^@modelcontextprotocol\\/sdk/]',
          message: 'Only runtime/src/tools/mcp imports the MCP SDK.',
        },
      ],
    },
  },
  {
    // Small files and functions (issue 23): no source file over 400 lines, no function over 80,
    // counting lines of code (blank lines and comments are not counted: Prettier's line width
    // wraps long lines). Tests, test helpers and generated code are exempt.
    files: ['**/*.ts', 'scripts/**/*.mjs'],
    ignores: ['**/*.test.ts', '**/test/**', '**/testing/**', '**/conformance.ts', '**/*.d.ts'],
    rules: {
      'max-lines': ['error', { max: 400, skipBlankLines: true, skipComments: true }],
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true, IIFEs: true }],
    },
  },
);
