// The library must run in browsers: no Node built-ins, Buffer or process in
// shipped code (tests and src/testing may use them), and only WebCrypto and
// the noble libraries as crypto.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const srcDir = new URL('./', import.meta.url);
const shipped = readdirSync(srcDir).filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'));

describe('browser compatibility', () => {
  it.each(shipped)('%s uses no Node-only APIs', (file) => {
    const code = readFileSync(new URL(file, srcDir), 'utf8').replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, '');
    expect(code).not.toMatch(/from ['"]node:|require\(|\bBuffer\b|\bprocess\.|from ['"](crypto|fs|path|buffer)['"]/);
    for (const m of code.matchAll(/from ['"]([^'"]+)['"]/g)) expect(m[1]).toMatch(/^(\.\/|@noble\/(curves|ciphers|hashes)\/)/);
  });

  it('uses globalThis.crypto (WebCrypto), present in Node 20 and browsers', () => {
    expect(typeof globalThis.crypto.subtle.encrypt).toBe('function');
  });
});
