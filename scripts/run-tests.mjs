// The README's test command: runs every workspace's tests through Turborepo,
// then prints one totals line over the whole workspace, exactly
// `N passed, N failed` (`, N skipped` when any were skipped).
// Exit code: non-zero when any test failed or any package's test run failed.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const workspaces = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).workspaces;

function packageDirs() {
  return workspaces.flatMap((pattern) => {
    if (!pattern.endsWith('/*')) return [join(root, pattern)];
    const base = join(root, pattern.slice(0, -2));
    return existsSync(base) ? readdirSync(base).map((d) => join(base, d)).filter((d) => statSync(d).isDirectory()) : [];
  });
}

const reports = () => packageDirs().map((d) => join(d, '.test-results', 'vitest.json'));
for (const r of reports()) rmSync(r, { force: true });

// One package at a time: each suite starts several services and runs its files
// in parallel already; two suites at once on 2 cores made timing-sensitive
// tests flaky without making the run much shorter.
const args = ['turbo', 'run', 'test', '--concurrency=1', '--continue', ...process.argv.slice(2)];
const run = spawnSync('npx', args, { stdio: 'inherit', cwd: root, env: { TURBO_TELEMETRY_DISABLED: '1', ...process.env } });

let passed = 0;
let failed = 0;
let skipped = 0;
let missing = 0;
const filtered = process.argv.slice(2).some((a) => a.startsWith('--filter'));
for (const dir of packageDirs()) {
  const file = join(dir, '.test-results', 'vitest.json');
  const pkg = existsSync(join(dir, 'package.json')) ? JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) : {};
  if (!existsSync(file)) {
    // A package with tests that left no report crashed before reporting (or lacks the shared vitest config).
    if (pkg.scripts?.test && !filtered) {
      console.error(`run-tests: ${pkg.name} wrote no test report`);
      missing++;
    }
    continue;
  }
  const r = JSON.parse(readFileSync(file, 'utf8'));
  passed += r.numPassedTests ?? 0;
  failed += r.numFailedTests ?? 0;
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(run.status !== 0 || failed > 0 || missing > 0 ? 1 : 0);
