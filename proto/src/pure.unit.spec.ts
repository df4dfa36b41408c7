// @bil/proto's subpaths errors, events, limits and rest are imported by the
// browser SDK: they and everything they import at run time must stay free of
// Node (only relative imports, and of the generated files only the enum
// constants, which import nothing).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const PURE = ['errors.ts', 'events.ts', 'limits.ts', 'rest.ts', 'rest-chat.ts'];

function runtimeImports(url: URL): string[] {
  const code = readFileSync(url, 'utf8');
  return [...code.matchAll(/^import (?!type )[^;]*?from '([^']+)'/gm)].map((m) => m[1]!);
}

describe('the pure subpaths of @bil/proto', () => {
  it.each(PURE)('%s imports at run time only relative modules that import nothing else', (file) => {
    const seen = new Set<string>();
    const visit = (url: URL) => {
      if (seen.has(url.href)) return;
      seen.add(url.href);
      const code = readFileSync(url, 'utf8');
      expect(code, url.pathname).not.toMatch(/\bprocess\.|\bBuffer\b|require\(/);
      for (const spec of runtimeImports(url)) {
        expect(spec, `${url.pathname} imports ${spec}`).toMatch(/^\.\.?\//);
        visit(new URL(spec.replace(/\.js$/, '.ts'), url));
      }
    };
    visit(new URL(file, import.meta.url));
  });
});
