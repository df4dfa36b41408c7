// One system for the suite (test/global-setup.ts); each file starts its own
// malicious proxy in front of it. Files run one at a time: every test
// generates RSA keys and runs scrypt, and the machine has 2 cores.
import { defineConfig, mergeConfig } from 'vitest/config';
import base from '../../vitest.base.js';

export default mergeConfig(
  base,
  defineConfig({
    test: {
      globalSetup: ['test/global-setup.ts'],
      fileParallelism: false,
      testTimeout: 90_000,
      hookTimeout: 120_000,
    },
  }),
);
