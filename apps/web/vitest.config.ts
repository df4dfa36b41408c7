// The bundle-size check and the browser suite (test/web.e2e.spec.ts, which
// starts its own system). One file at a time: the browser test is heavy on 2 cores.
import { defineConfig, mergeConfig } from 'vitest/config';
import base from '../../vitest.base.js';

export default mergeConfig(
  base,
  defineConfig({
    test: {
      include: ['test/**/*.spec.ts'],
      fileParallelism: false,
      testTimeout: 240_000,
      hookTimeout: 240_000,
    },
  }),
);
