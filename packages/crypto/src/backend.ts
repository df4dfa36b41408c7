import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import type { Suite } from './aead.js';
import { asBytes, type Bytes } from './encoding.js';

/**
 * The symmetric primitives the library runs per message, behind one small
 * interface so a platform with a faster native implementation can supply it.
 * The backend never changes what goes on the wire: every backend must produce
 * byte-identical output for the same inputs (checked by the Wycheproof and
 * cross-backend tests).
 *
 * Contract: the library validates every argument before calling (suite name,
 * 32-byte key, 12-byte nonce, `ciphertext.length ≥ 16`, HKDF length 1..8160,
 * non-empty HMAC key), and maps ANY exception from `aeadOpen` to the uniform
 * CannotDecryptError, so a backend may throw whatever its platform throws.
 * Inputs are never retained or modified; outputs are fresh, caller-owned
 * buffers (the caller wipes them).
 *
 * - `aeadSeal` returns ciphertext ‖ 16-byte tag.
 * - `aeadOpen` takes ciphertext ‖ 16-byte tag and throws unless the full tag verifies.
 * - `hkdfSha256` is RFC 5869 with an empty salt meaning HashLen zero bytes.
 */
export interface CryptoBackend {
  /** For diagnostics and benchmarks, e.g. "portable", "node". */
  readonly name: string;
  aeadSeal(suite: Suite, key: Bytes, nonce: Bytes, plaintext: Bytes, aad: Bytes): Bytes | Promise<Bytes>;
  aeadOpen(suite: Suite, key: Bytes, nonce: Bytes, ciphertext: Bytes, aad: Bytes): Bytes | Promise<Bytes>;
  sha256(data: Bytes): Bytes | Promise<Bytes>;
  hmacSha256(key: Bytes, data: Bytes): Bytes | Promise<Bytes>;
  hkdfSha256(ikm: Bytes, salt: Bytes, info: Bytes, length: number): Bytes | Promise<Bytes>;
  /**
   * Optional native Ed25519 (RFC 8032 §5.1.6), synchronous; without it
   * @noble/curves signs. Called with a 32-byte seed and bytes.
   */
  ed25519Sign?(secretKey: Bytes, message: Bytes): Bytes;
  /**
   * Optional native Ed25519 verification with exactly signature.ts's strict
   * rules (RFC 8032 §5.1.7, not ZIP-215: non-canonical encodings and S ≥ L
   * refused); called with a 32-byte key and a 64-byte signature; never throws.
   */
  ed25519Verify?(publicKey: Bytes, message: Bytes, signature: Bytes): boolean;
  /** Optional native Ed25519 public key of a 32-byte seed (RFC 8032 §5.1.5); without it @noble/curves derives it. */
  ed25519PublicKey?(secretKey: Bytes): Bytes;
  /**
   * Optional native incremental SHA-256 (attachments hash their whole
   * ciphertext as it streams); without it @noble/hashes hashes. WebCrypto has
   * no incremental digest, so the portable backend leaves it out.
   */
  sha256Stream?(): Sha256Stream;
}

/** An incremental SHA-256: `update` any number of times, then `digest` once. */
export interface Sha256Stream {
  update(data: Uint8Array): unknown;
  digest(): Uint8Array;
}

const subtle = (): SubtleCrypto => globalThis.crypto.subtle;

function aesGcmParams(nonce: Bytes, aad: Bytes): AesGcmParams {
  return { name: 'AES-GCM', iv: nonce, additionalData: aad, tagLength: 128 };
}

/**
 * The default, and the only backend in browsers: WebCrypto for AES-256-GCM,
 * SHA-256, HMAC and HKDF; @noble/ciphers for ChaCha20-Poly1305 (which
 * WebCrypto lacks). Imported WebCrypto keys are not cached: every AEAD and
 * HKDF key is derived per message, so a cache would never hit and would only
 * keep key material alive.
 */
export const portableBackend: CryptoBackend = Object.freeze({
  name: 'portable',
  async aeadSeal(suite: Suite, key: Bytes, nonce: Bytes, plaintext: Bytes, aad: Bytes): Promise<Bytes> {
    if (suite === 'chacha20-poly1305') return asBytes(chacha20poly1305(key, nonce, aad).encrypt(plaintext));
    const k = await subtle().importKey('raw', key, { name: 'AES-GCM' }, false, ['encrypt']);
    return new Uint8Array(await subtle().encrypt(aesGcmParams(nonce, aad), k, plaintext));
  },
  async aeadOpen(suite: Suite, key: Bytes, nonce: Bytes, ciphertext: Bytes, aad: Bytes): Promise<Bytes> {
    if (suite === 'chacha20-poly1305') return asBytes(chacha20poly1305(key, nonce, aad).decrypt(ciphertext));
    const k = await subtle().importKey('raw', key, { name: 'AES-GCM' }, false, ['decrypt']);
    return new Uint8Array(await subtle().decrypt(aesGcmParams(nonce, aad), k, ciphertext));
  },
  async sha256(data: Bytes): Promise<Bytes> {
    return new Uint8Array(await subtle().digest('SHA-256', data));
  },
  async hmacSha256(key: Bytes, data: Bytes): Promise<Bytes> {
    const k = await subtle().importKey('raw', key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
    return new Uint8Array(await subtle().sign('HMAC', k, data));
  },
  async hkdfSha256(ikm: Bytes, salt: Bytes, info: Bytes, length: number): Promise<Bytes> {
    const k = await subtle().importKey('raw', ikm, 'HKDF', false, ['deriveBits']);
    return new Uint8Array(await subtle().deriveBits({ name: 'HKDF', hash: 'SHA-256', salt, info }, k, length * 8));
  },
});

const METHODS = ['aeadSeal', 'aeadOpen', 'sha256', 'hmacSha256', 'hkdfSha256'] as const;

let current: CryptoBackend = portableBackend;

/** The backend in use (process-wide). @internal */
export function backend(): CryptoBackend {
  return current;
}

/**
 * Installs `b` as the process-wide backend and returns the previous one.
 * Node applications call `useNodeCrypto()` from `@bil/crypto/node` instead of
 * this. Switching never affects compatibility: all backends produce the same
 * bytes.
 * @example
 * const previous = setCryptoBackend(portableBackend);
 */
export function setCryptoBackend(b: CryptoBackend): CryptoBackend {
  if (typeof b !== 'object' || b === null || typeof b.name !== 'string' || !METHODS.every((m) => typeof b[m] === 'function')) {
    throw new TypeError('setCryptoBackend: expected a CryptoBackend');
  }
  const previous = current;
  current = b;
  return previous;
}
