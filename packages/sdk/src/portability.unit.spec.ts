// The main entry must run in browsers: no Node built-ins, Buffer or process
// outside the "@bil/sdk/node" entry (node.ts, file-key-store.ts).
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const srcDir = new URL('./', import.meta.url);
const nodeOnly = new Set(['node.ts', 'file-key-store.ts']);
const core = readdirSync(srcDir).filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts') && !nodeOnly.has(f));

describe('browser compatibility of the main entry', () => {
  it.each(core)('%s uses no Node-only APIs', (file) => {
    const code = readFileSync(new URL(file, srcDir), 'utf8').replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, '');
    expect(code).not.toMatch(/from ['"]node:|(?<![\w#.])require\(|\bBuffer\b|\bprocess\.|from ['"](crypto|fs|path|buffer|events)['"]/);
    // @bil/proto's pure subpaths are allowed: proto/src/pure.unit.spec.ts keeps them free of Node;
    // so is @noble/hashes' scrypt (pure JS, what @bil/crypto builds on), for the sealed key store.
    for (const m of code.matchAll(/from ['"]([^'"]+)['"]/g)) expect(m[1]).toMatch(/^(\.\/|@bil\/crypto$|@bil\/proto\/(errors|events|limits|rest|rest-chat)$|@noble\/hashes\/scrypt\.js$)/);
  });

  it('index.ts does not reach the node entry', () => {
    expect(readFileSync(new URL('index.ts', srcDir), 'utf8')).not.toMatch(/file-key-store|\.\/node\.js/);
  });
});
