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
    },
  },
  {
    // Runs in browsers too: no Node built-ins outside its tests.
    files: ['packages/summarizer/src/**'],
    ignores: ['**/*.spec.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['node:*'], message: '@bil/summarizer is browser-safe: use WebCrypto / web APIs' }] }] },
  },
  {
    files: ['**/scripts/**', '**/bench/**', '**/*.mjs', 'apps/**'],
    rules: { 'no-console': 'off' },
  },
);
