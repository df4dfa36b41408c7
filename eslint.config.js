// One linter for the whole monorepo: typescript-eslint's recommended rules
// with type information off (fast), plus a few rules this codebase relies on.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  {
    ignores: ['**/dist/**', '**/gen/**', '**/node_modules/**', '**/coverage/**', '**/.turbo/**'],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-console': 'error',
      eqeqeq: ['error', 'always'],
      // Another package is used through its package.json "exports", never through its build output.
      'no-restricted-imports': ['error', { patterns: [{ group: ['@bil/*/dist', '@bil/*/dist/*'], message: 'import the package\'s exported subpath (package.json "exports")' }] }],
    },
  },
  {
    // The web client runs in browsers only: browser globals, no Node built-ins.
    files: ['apps/web/src/**'],
    languageOptions: { globals: { ...globals.browser } },
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['node:*'], message: 'apps/web runs in browsers: use web APIs' }] }] },
  },
  {
    // Runs in browsers too: no Node built-ins outside its tests.
    files: ['packages/summarizer/src/**'],
    ignores: ['**/*.spec.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['node:*'], message: '@bil/summarizer is browser-safe: use WebCrypto / web APIs' }] }] },
  },
  {
    // Pure domain code (docs/architecture.md): deciders, validation and their helpers do no I/O, so they
    // import @bil/runtime's domain entry point, never its barrel (which pulls gRPC, NATS and PostgreSQL in),
    // nor an infrastructure client. The runtime's own domain modules import nothing outside themselves.
    files: ['services/*/src/domain/**', 'packages/runtime/src/{domain,decider,errors,fields,clock}.ts'],
    ignores: ['**/*.spec.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: '@bil/runtime', message: 'domain code imports @bil/runtime/domain (no infrastructure)' }],
          patterns: [
            {
              group: ['@grpc/*', '@nats-io/*', 'pg', 'knex', 'ioredis', '@mikro-orm/*', 'pino', 'prom-client', 'node:net', 'node:http', 'node:http2'],
              message: 'domain code does no I/O',
            },
            { group: ['@bil/*/dist', '@bil/*/dist/*'], message: 'import the package\'s exported subpath (package.json "exports")' },
            { group: ['./db.js', './grpc*.js', './nats.js', './event-store.js', './outbox.js', './redis.js'], message: 'the runtime domain entry point carries no infrastructure' },
          ],
        },
      ],
    },
  },
  {
    files: ['**/scripts/**', '**/bench/**', '**/*.mjs', 'apps/**'],
    rules: { 'no-console': 'off' },
  },
);
