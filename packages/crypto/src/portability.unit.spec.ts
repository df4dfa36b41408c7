// The library must run in browsers: no Node built-ins, Buffer or process in
// shipped code (tests and src/testing may use them), and only WebCrypto and
// the noble libraries as crypto. The one exception is the Node entry
// (`@bil/crypto/node`, src/node.ts), which nothing else in src may import, so
// the main entry's module graph stays browser-safe.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const srcDir = new URL('./', import.meta.url);
/** Node-only entry points: exempt from the rule, and reachable only through their own export. */
const NODE_ENTRIES = ['node.ts'];
const shippedAll = readdirSync(srcDir).filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'));
const shipped = shippedAll.filter((f) => !NODE_ENTRIES.includes(f));
const code = (file: string): string => readFileSync(new URL(file, srcDir), 'utf8').replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, '');

describe('browser compatibility', () => {
  it.each(shipped)('%s uses no Node-only APIs', (file) => {
    const text = code(file);
    expect(text).not.toMatch(/from ['"]node:|require\(|\bBuffer\b|\bprocess\.|from ['"](crypto|fs|path|buffer)['"]|import\(/);
    for (const m of text.matchAll(/from ['"]([^'"]+)['"]/g)) expect(m[1]).toMatch(/^(\.\/|@noble\/(curves|ciphers|hashes)\/)/);
  });

  it.each(shipped)('%s does not import the Node entry', (file) => {
    for (const m of code(file).matchAll(/from ['"]([^'"]+)['"]/g)) {
      expect(NODE_ENTRIES.map((f) => `./${f.replace(/\.ts$/, '.js')}`)).not.toContain(m[1]);
    }
  });

  it('the Node entry exists, is exported as "./node", and is the only shipped file using node:', () => {
    expect(shippedAll).toEqual(expect.arrayContaining(NODE_ENTRIES));
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { exports: Record<string, { default: string }> };
    expect(pkg.exports['./node']?.default).toBe('./dist/node.js');
    expect(pkg.exports['.']?.default).toBe('./dist/index.js');
    expect(code('node.ts')).toMatch(/from 'node:crypto'/);
  });

  it('uses globalThis.crypto (WebCrypto), present in Node 20 and browsers', () => {
    expect(typeof globalThis.crypto.subtle.encrypt).toBe('function');
  });
});
