import { asBytes, equalBytes, type Bytes } from './encoding.js';

const subtle = (): SubtleCrypto => globalThis.crypto.subtle;

/** SHA-256 output length in bytes. */
export const HASH_LENGTH = 32;

/**
 * SHA-256 (FIPS 180-4) on WebCrypto.
 * @example
 * const digest = await sha256(utf8('abc'));
 */
export async function sha256(data: Uint8Array): Promise<Bytes> {
  if (!(data instanceof Uint8Array)) throw new TypeError('sha256: expected bytes');
  return new Uint8Array(await subtle().digest('SHA-256', asBytes(data)));
}

/**
 * HKDF-SHA256 (RFC 5869) on WebCrypto. An empty salt means HashLen zero bytes
 * (§2.2). Output is limited to 255·HashLen bytes (§2.3); longer requests throw.
 * @example
 * const okm = await hkdfSha256(ikm, new Uint8Array(), utf8('info'), 32);
 */
export async function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Promise<Bytes> {
  if (!(ikm instanceof Uint8Array) || !(salt instanceof Uint8Array) || !(info instanceof Uint8Array)) {
    throw new TypeError('hkdf: expected bytes');
  }
  if (!Number.isSafeInteger(length) || length < 1 || length > 255 * HASH_LENGTH) throw new RangeError('hkdf: bad length');
  const key = await subtle().importKey('raw', asBytes(ikm), 'HKDF', false, ['deriveBits']);
  const bits = await subtle().deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: asBytes(salt), info: asBytes(info) }, key, length * 8);
  return new Uint8Array(bits);
}

async function hmacKey(key: Uint8Array): Promise<CryptoKey> {
  if (!(key instanceof Uint8Array) || key.length === 0) throw new TypeError('hmac: key must be non-empty bytes');
  return subtle().importKey('raw', asBytes(key), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
}

/**
 * HMAC-SHA256 (RFC 2104) on WebCrypto; full 32-byte tag.
 * @example
 * const tag = await hmacSha256(key, utf8('message'));
 */
export async function hmacSha256(key: Uint8Array, data: Uint8Array): Promise<Bytes> {
  if (!(data instanceof Uint8Array)) throw new TypeError('hmac: expected bytes');
  return new Uint8Array(await subtle().sign('HMAC', await hmacKey(key), asBytes(data)));
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
