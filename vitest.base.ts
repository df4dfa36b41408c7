// Shared vitest settings: every package writes a JSON report that
// scripts/run-tests.mjs adds up into the workspace's one totals line.
// Two test files at a time: vitest's default on 2 cores is one (cores - 1),
// and most files spend much of their time waiting on services, so two halve
// a suite's wall time (the SDK's: 222 s -> 126 s). Suites that share one
// system or start browsers set `fileParallelism: false` themselves.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.spec.ts', 'test/**/*.spec.ts'],
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default', ['json', { outputFile: '.test-results/vitest.json' }]],
  },
});
