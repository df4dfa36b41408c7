import { backend } from './backend.js';
import { asBytes, type Bytes } from './encoding.js';
import { CannotDecryptError, fail } from './errors.js';

/**
 * Content ciphers of suite v1: AES-256-GCM (NIST SP 800-38D) and
 * ChaCha20-Poly1305 (RFC 8439 §2.8). Both take a 32-byte key, a 12-byte nonce
 * and append a 16-byte tag. They run on the installed crypto backend
 * (backend.ts): by default WebCrypto AES-GCM and @noble/ciphers ChaCha (browsers' WebCrypto
 * lacks it); `useNodeCrypto()` from `@bil/crypto/node` switches to OpenSSL.
 * Parameters are checked here, before any backend sees them.
 */
export const SUITES = ['aes-256-gcm', 'chacha20-poly1305'] as const;
export type Suite = (typeof SUITES)[number];

export const AEAD_KEY_LENGTH = 32;
export const AEAD_NONCE_LENGTH = 12;
export const AEAD_TAG_LENGTH = 16;

/**
 * True if `value` names a suite this library implements.
 * @example
 * isSuite(header.suite); // true for 'aes-256-gcm' | 'chacha20-poly1305'
 */
export function isSuite(value: unknown): value is Suite {
  return typeof value === 'string' && (SUITES as readonly string[]).includes(value);
}

function checkParams(suite: unknown, key: unknown, nonce: unknown, data: unknown, aad: unknown): void {
  if (!isSuite(suite)) throw new TypeError('aead: unknown suite');
  if (!(key instanceof Uint8Array) || key.length !== AEAD_KEY_LENGTH) throw new TypeError('aead: key must be 32 bytes');
  // Only 96-bit nonces: other GCM IV lengths go through GHASH (SP 800-38D §7.1
  // step 2) and are where counter-wrap bugs live; RFC 8439 fixes 96 bits.
  if (!(nonce instanceof Uint8Array) || nonce.length !== AEAD_NONCE_LENGTH) throw new TypeError('aead: nonce must be 12 bytes');
  if (!(data instanceof Uint8Array) || !(aad instanceof Uint8Array)) throw new TypeError('aead: expected bytes');
}

/**
 * Encrypts and authenticates; returns ciphertext ‖ 16-byte tag.
 * @example
 * const ct = await aeadEncrypt('aes-256-gcm', randomBytes(32), randomBytes(12), utf8('hi'), new Uint8Array());
 */
export async function aeadEncrypt(suite: Suite, key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Promise<Bytes> {
  checkParams(suite, key, nonce, plaintext, aad);
  return backend().aeadSeal(suite, asBytes(key), asBytes(nonce), asBytes(plaintext), asBytes(aad));
}

/**
 * Verifies the tag and decrypts. Any failure, including input shorter than a
 * full tag (no truncated tags, SP 800-38D §5.2.1.2), is {@link CannotDecryptError},
 * whatever the backend threw.
 * @example
 * const pt = await aeadDecrypt('chacha20-poly1305', key, nonce, ct, aad);
 */
export async function aeadDecrypt(suite: Suite, key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, aad: Uint8Array): Promise<Bytes> {
  // failClosed, inlined: one async frame less per message.
  try {
    checkParams(suite, key, nonce, ciphertext, aad);
    if (ciphertext.length < AEAD_TAG_LENGTH) fail();
    return await backend().aeadOpen(suite, asBytes(key), asBytes(nonce), asBytes(ciphertext), asBytes(aad));
  } catch {
    throw new CannotDecryptError();
  }
}
