// The shared settings (JSON report where scripts/run-tests.mjs reads it), plus
// a global setup that extracts Helm and renders the chart once per run.
import { defineConfig, mergeConfig } from 'vitest/config';
import base from '../../vitest.base.js';

export default mergeConfig(base, defineConfig({ test: { globalSetup: ['test/global-setup.ts'] } }));
