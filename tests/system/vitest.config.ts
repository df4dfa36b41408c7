// One system for the whole package (test/global-setup.ts), and one test file
// at a time: the start script's own test starts further systems, and two at
// once on 2 cores make timing-sensitive steps flaky.
import { defineConfig, mergeConfig } from 'vitest/config';
import base from '../../vitest.base.js';

export default mergeConfig(
  base,
  defineConfig({
    test: {
      globalSetup: ['test/global-setup.ts'],
      fileParallelism: false,
      testTimeout: 120_000,
    },
  }),
);
