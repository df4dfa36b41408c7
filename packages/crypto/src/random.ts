import { asBytes, type Bytes } from './encoding.js';

/**
 * The only two sources of nondeterminism in the library: fresh random bytes
 * (keys, nonces) and the random seed inside RSA-OAEP encryption (RFC 8017
 * §7.1.1 step 2d). Production code always uses {@link systemEntropy}; the
 * test-vector generator swaps in a seeded source so vectors are reproducible.
 * @internal
 */
export interface EntropySource {
  randomBytes(length: number): Bytes;
  rsaOaepEncrypt(publicKey: CryptoKey, plaintext: Bytes, label: Bytes): Promise<Bytes>;
}

/**
 * Cryptographically secure random bytes from `crypto.getRandomValues`.
 * @example
 * const nonce = randomBytes(12);
 */
export function randomBytes(length: number): Bytes {
  if (!Number.isSafeInteger(length) || length < 0) throw new TypeError('randomBytes: bad length');
  const out = new Uint8Array(length);
  // getRandomValues fills at most 65536 bytes per call (WebCrypto §10.1.1).
  for (let o = 0; o < length; o += 65536) globalThis.crypto.getRandomValues(out.subarray(o, Math.min(length, o + 65536)));
  return out;
}

/** The system CSPRNG and WebCrypto RSA-OAEP. */
export const systemEntropy: EntropySource = {
  randomBytes,
  async rsaOaepEncrypt(publicKey, plaintext, label) {
    const ct = await globalThis.crypto.subtle.encrypt({ name: 'RSA-OAEP', label: asBytes(label) }, publicKey, asBytes(plaintext));
    return new Uint8Array(ct);
  },
};
