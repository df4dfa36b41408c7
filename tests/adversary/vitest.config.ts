// One system for the suite (test/global-setup.ts); each file starts its own
// malicious proxy in front of it. Two files at a time (vitest.base.ts): every
// test generates RSA keys and runs scrypt, but files also wait on the system.
import { defineConfig, mergeConfig } from 'vitest/config';
import base from '../../vitest.base.js';

export default mergeConfig(
  base,
  defineConfig({
    test: {
      globalSetup: ['test/global-setup.ts'],
      testTimeout: 90_000,
      hookTimeout: 120_000,
    },
  }),
);
