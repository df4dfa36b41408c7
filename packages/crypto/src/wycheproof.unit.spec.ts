// Wycheproof (github.com/C2SP/wycheproof, Apache-2.0; files and LICENSE in
// test/vectors/wycheproof/) run against the primitives exactly as this library
// wires them: our AEAD, HKDF, HMAC, Ed25519 and RSA-OAEP entry points, not the
// underlying libraries directly. Parameter sets the protocol doesn't use
// (AES-128/192, IVs other than 96 bits, truncated MACs) must be refused.
// What runs on the CryptoBackend (AEAD, HKDF, HMAC) runs once per backend.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { aeadDecrypt, aeadEncrypt, type Suite } from './aead.js';
import { CannotDecryptError } from './errors.js';
import { hkdfSha256, hmacSha256, hmacSha256Verify } from './kdf.js';
import { importEncryptionPrivateKey } from './keys.js';
import { ed25519Verify } from './signature.js';
import { rsaOaepDecrypt } from './wrap.js';
import { BACKENDS, useBackend } from './testing/backends.js';

interface Test {
  tcId: number;
  result: 'valid' | 'invalid' | 'acceptable';
  [k: string]: unknown;
}
interface Group {
  tests: Test[];
  [k: string]: unknown;
}

function load(name: string): Group[] {
  const file = new URL(`../test/vectors/wycheproof/${name}`, import.meta.url);
  return (JSON.parse(readFileSync(file, 'utf8')) as { testGroups: Group[] }).testGroups;
}
const hex = (s: unknown) => Uint8Array.from((s as string).match(/../g) ?? [], (b) => parseInt(b, 16));
const concat = (a: Uint8Array, b: Uint8Array) => new Uint8Array([...a, ...b]);

function aeadSuite(file: string, suite: Suite) {
  return async () => {
    let checked = 0;
    for (const g of load(file)) {
      const supported = g.keySize === 256 && g.ivSize === 96 && g.tagSize === 128;
      for (const t of g.tests) {
        const [key, iv, aad, msg, ct, tag] = [t.key, t.iv, t.aad, t.msg, t.ct, t.tag].map(hex) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array];
        const sealed = concat(ct, tag);
        const opened = aeadDecrypt(suite, key, iv, sealed, aad);
        if (supported && t.result === 'valid') {
          expect(await opened, `tcId ${t.tcId}`).toEqual(msg);
          expect(await aeadEncrypt(suite, key, iv, msg, aad), `tcId ${t.tcId}`).toEqual(sealed);
          checked++;
        } else {
          await expect(opened, `tcId ${t.tcId}`).rejects.toThrow(CannotDecryptError);
        }
      }
    }
    expect(checked).toBeGreaterThan(30);
  };
}

describe.each(BACKENDS)('Wycheproof on the $name backend', ({ backend }) => {
  useBackend(backend);

  it('AES-256-GCM (aes_gcm_test.json): 96-bit IV, 128-bit tag only', aeadSuite('aes_gcm_test.json', 'aes-256-gcm'));

  it('ChaCha20-Poly1305 (chacha20_poly1305_test.json)', aeadSuite('chacha20_poly1305_test.json', 'chacha20-poly1305'));

  it('HKDF-SHA256 (hkdf_sha256_test.json)', async () => {
    for (const g of load('hkdf_sha256_test.json')) {
      for (const t of g.tests) {
        const out = hkdfSha256(hex(t.ikm), hex(t.salt), hex(t.info), t.size as number);
        if (t.result === 'valid') expect(await out, `tcId ${t.tcId}`).toEqual(hex(t.okm));
        else await expect(out, `tcId ${t.tcId}`).rejects.toThrow();
      }
    }
  });

  it('HMAC-SHA256 (hmac_sha256_test.json): full tags verify, truncated tags are refused', async () => {
    for (const g of load('hmac_sha256_test.json')) {
      for (const t of g.tests) {
        const [key, msg, tag] = [hex(t.key), hex(t.msg), hex(t.tag)];
        const full = await hmacSha256(key, msg);
        if (g.tagSize === 256) {
          expect(await hmacSha256Verify(key, msg, tag), `tcId ${t.tcId}`).toBe(t.result === 'valid');
        } else {
          expect(await hmacSha256Verify(key, msg, tag), `tcId ${t.tcId}`).toBe(false);
          expect(Buffer.from(full.subarray(0, tag.length)).equals(Buffer.from(tag)), `tcId ${t.tcId}`).toBe(t.result === 'valid');
        }
      }
    }
  });
});

describe.each(BACKENDS)('Wycheproof Ed25519 on the $name backend', ({ backend }) => {
  useBackend(backend);
  it('Ed25519 (ed25519_test.json), strict RFC 8032 verification', () => {
    let n = 0;
    for (const g of load('ed25519_test.json')) {
      const pk = hex((g.publicKey as { pk: string }).pk);
      for (const t of g.tests) {
        expect(ed25519Verify(pk, hex(t.msg), hex(t.sig)), `tcId ${t.tcId}`).toBe(t.result === 'valid');
        n++;
      }
    }
    expect(n).toBe(151);
  });
});

describe('Wycheproof', () => {
  it('Ed25519 (ed25519_test.json), strict RFC 8032 verification (default backend)', () => {
    let n = 0;
    for (const g of load('ed25519_test.json')) {
      const pk = hex((g.publicKey as { pk: string }).pk);
      for (const t of g.tests) {
        expect(ed25519Verify(pk, hex(t.msg), hex(t.sig)), `tcId ${t.tcId}`).toBe(t.result === 'valid');
        n++;
      }
    }
    expect(n).toBe(151);
  });

  it.each(['rsa_oaep_3072_sha256_mgf1sha256_test.json', 'rsa_oaep_4096_sha256_mgf1sha256_test.json'])(
    'RSA-OAEP SHA-256/MGF1-SHA-256 (%s): every invalid case is the same error',
    async (file) => {
      for (const g of load(file)) {
        const key = await importEncryptionPrivateKey(hex(g.privateKeyPkcs8));
        const results = await Promise.all(
          g.tests.map(async (t) => {
            const out = rsaOaepDecrypt(key, hex(t.ct), hex(t.label));
            if (t.result === 'valid') expect(await out, `tcId ${t.tcId}`).toEqual(hex(t.msg));
            else await expect(out, `tcId ${t.tcId}`).rejects.toThrow(CannotDecryptError);
          }),
        );
        expect(results.length).toBe(37);
      }
    },
  );
});
