// The first load's JavaScript stays small: every script under dist/assets
// (what index.html loads, and any chunk it could load) gzipped, summed, under
// 300 KB. Runs against the build `turbo run test` makes first.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';

const dist = fileURLToPath(new URL('../dist', import.meta.url));
const BUDGET_BYTES = 300 * 1024;

describe('the built web client', () => {
  it('loads under 300 KB of gzipped JavaScript, with no inline script (the CSP forbids it)', () => {
    const assets = join(dist, 'assets');
    const scripts = readdirSync(assets).filter((f) => f.endsWith('.js'));
    expect(scripts.length).toBeGreaterThan(0);
    const gzipped = scripts.reduce((sum, f) => sum + gzipSync(readFileSync(join(assets, f)), { level: 9 }).length, 0);
    process.stdout.write(`web client JavaScript: ${scripts.length} file(s), ${(gzipped / 1024).toFixed(1)} KB gzipped (budget ${BUDGET_BYTES / 1024} KB)\n`);
    expect(gzipped).toBeLessThan(BUDGET_BYTES);
    const html = readFileSync(join(dist, 'index.html'), 'utf8');
    expect(html).toMatch(/<script type="module" crossorigin src="\/assets\/index-[\w-]+\.js"><\/script>/);
    expect(html.replace(/<script[^>]*src="[^"]+"[^>]*><\/script>/g, '')).not.toContain('<script');
  });
});
