// Once per test run: extract Helm (cached across runs), then lint and render
// the chart once per value set. The spec files get the results with inject().
import type { TestProject } from 'vitest/node';
import { type Run, type ValueSet, helmBinary, runHelm, templateArgs, valueSets, valuesArgs, chartDir } from './support.js';

export interface HelmResults {
  binary: string;
  version: string;
  lint: Record<ValueSet, Run>;
  template: Record<ValueSet, Run>;
}

declare module 'vitest' {
  export interface ProvidedContext {
    helm: HelmResults;
  }
}

export default function setup(project: TestProject): void {
  const binary = helmBinary();
  const version = runHelm(binary, ['version', '--short']).stdout.trim();
  const sets = Object.keys(valueSets) as ValueSet[];
  const lint = {} as Record<ValueSet, Run>;
  const template = {} as Record<ValueSet, Run>;
  for (const set of sets) {
    lint[set] = runHelm(binary, ['lint', chartDir, '--strict', ...valuesArgs(set)]);
    template[set] = runHelm(binary, templateArgs(set));
  }
  project.provide('helm', { binary, version, lint, template });
}
