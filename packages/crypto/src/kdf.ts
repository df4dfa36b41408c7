import { backend } from './backend.js';
import { asBytes, equalBytes, type Bytes } from './encoding.js';

// SHA-256, HMAC and HKDF run on the installed backend (WebCrypto by default,
// OpenSSL with `useNodeCrypto()`); arguments are checked here first.

/** SHA-256 output length in bytes. */
export const HASH_LENGTH = 32;

/**
 * SHA-256 (FIPS 180-4).
 * @example
 * const digest = await sha256(utf8('abc'));
 */
export async function sha256(data: Uint8Array): Promise<Bytes> {
  if (!(data instanceof Uint8Array)) throw new TypeError('sha256: expected bytes');
  return backend().sha256(asBytes(data));
}

/**
 * HKDF-SHA256 (RFC 5869). An empty salt means HashLen zero bytes
 * (§2.2). Output is limited to 255·HashLen bytes (§2.3); longer requests throw.
 * @example
 * const okm = await hkdfSha256(ikm, new Uint8Array(), utf8('info'), 32);
 */
export async function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Promise<Bytes> {
  if (!(ikm instanceof Uint8Array) || !(salt instanceof Uint8Array) || !(info instanceof Uint8Array)) {
    throw new TypeError('hkdf: expected bytes');
  }
  if (!Number.isSafeInteger(length) || length < 1 || length > 255 * HASH_LENGTH) throw new RangeError('hkdf: bad length');
  return backend().hkdfSha256(asBytes(ikm), asBytes(salt), asBytes(info), length);
}

/**
 * HMAC-SHA256 (RFC 2104); full 32-byte tag.
 * @example
 * const tag = await hmacSha256(key, utf8('message'));
 */
export async function hmacSha256(key: Uint8Array, data: Uint8Array): Promise<Bytes> {
  if (!(key instanceof Uint8Array) || key.length === 0) throw new TypeError('hmac: key must be non-empty bytes');
  if (!(data instanceof Uint8Array)) throw new TypeError('hmac: expected bytes');
  return backend().hmacSha256(asBytes(key), asBytes(data));
}

/**
 * Checks a full-length HMAC-SHA256 tag in constant time. Truncated tags are
 * refused: the protocol never truncates (RFC 2104 §5 allows it, we don't).
 * @example
 * if (!(await hmacSha256Verify(key, data, tag))) throw new CannotDecryptError();
 */
export async function hmacSha256Verify(key: Uint8Array, data: Uint8Array, tag: Uint8Array): Promise<boolean> {
  if (!(tag instanceof Uint8Array) || tag.length !== HASH_LENGTH) return false;
  return equalBytes(await hmacSha256(key, data), tag);
}
