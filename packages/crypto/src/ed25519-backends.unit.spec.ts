// Ed25519 on every backend: the node backend (OpenSSL) signs byte for byte as
// @noble/curves does and refuses what strict RFC 8032 refuses, including
// non-canonical public-key encodings OpenSSL itself might accept.
import { describe, expect, it } from 'vitest';
import { BACKENDS, useBackend } from './testing/backends.js';
import { ed25519PublicKey, ed25519Sign, ed25519Verify, generateEd25519KeyPair } from './signature.js';
import { portableBackend, setCryptoBackend } from './backend.js';

const seed = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const message = new TextEncoder().encode('bil ed25519 backends');
const portableSig = (() => {
  const previous = setCryptoBackend(portableBackend);
  try {
    return ed25519Sign(seed, message);
  } finally {
    setCryptoBackend(previous);
  }
})();

function le(n: bigint): Uint8Array {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return out;
}
const P = 2n ** 255n - 19n;

describe.each(BACKENDS)('Ed25519 on the $name backend', ({ backend }) => {
  useBackend(backend);

  it('signs as the portable backend does and verifies its own signatures', () => {
    const { publicKey } = generateEd25519KeyPair(seed);
    expect(Buffer.from(ed25519Sign(seed, message)).toString('hex')).toBe(Buffer.from(portableSig).toString('hex'));
    expect(ed25519Verify(publicKey, message, portableSig)).toBe(true);
    expect(ed25519Verify(publicKey, new TextEncoder().encode('other'), portableSig)).toBe(false);
    const bad = Uint8Array.from(portableSig);
    bad[63]! ^= 0x10; // S ≥ L or simply wrong
    expect(ed25519Verify(publicKey, message, bad)).toBe(false);
  });

  it('derives the public key as noble does, and signs with the current bytes of a reused seed array', () => {
    const { publicKey } = generateEd25519KeyPair(seed);
    expect(Buffer.from(ed25519PublicKey(seed)).toString('hex')).toBe(Buffer.from(publicKey).toString('hex'));
    // One array, its bytes replaced between calls (a caller reusing or wiping its buffer): never the old key.
    const buf = Uint8Array.from(seed);
    expect(ed25519Verify(publicKey, message, ed25519Sign(buf, message))).toBe(true);
    buf.set(Uint8Array.from({ length: 32 }, (_, i) => 200 - i));
    const other = generateEd25519KeyPair(Uint8Array.from(buf)).publicKey;
    expect(Buffer.from(ed25519PublicKey(buf)).toString('hex')).toBe(Buffer.from(other).toString('hex'));
    const sig = ed25519Sign(buf, message);
    expect([ed25519Verify(other, message, sig), ed25519Verify(publicKey, message, sig)]).toEqual([true, false]);
    // The returned public key is the caller's own copy.
    const pk = ed25519PublicKey(buf);
    pk.fill(0);
    expect(Buffer.from(ed25519PublicKey(buf)).toString('hex')).toBe(Buffer.from(other).toString('hex'));
  });

  it.each([
    ['y = p', le(P)],
    ['y = p + 1', le(P + 1n)],
    ['y = 2^255 - 1', le(2n ** 255n - 1n)],
    ['x = 0 with the sign bit (y = 1)', (() => { const b = le(1n); b[31]! |= 0x80; return b; })()],
    ['x = 0 with the sign bit (y = p - 1)', (() => { const b = le(P - 1n); b[31]! |= 0x80; return b; })()],
  ])('refuses a non-canonical public key (%s)', (_name, key) => {
    expect(ed25519Verify(key, message, portableSig)).toBe(false);
  });
});
