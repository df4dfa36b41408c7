import { canonicalBytes, type CanonicalObject } from './canonical-json.js';
import { asBytes, type Bytes } from './encoding.js';
import { fail, failClosed } from './errors.js';
import type { EntropySource } from './random.js';

/** Length of every content, message and epoch key the protocol wraps. */
export const WRAPPED_SECRET_LENGTH = 32;

/**
 * The OAEP label (RFC 8017 §7.1.1, "L") for one wrap: canonical JSON of the
 * context object, which always has a `purpose`. A wrapped key taken out of
 * its context (another message, chat, device or purpose) fails to unwrap.
 */
export function oaepLabel(context: CanonicalObject & { readonly purpose: string }): Bytes {
  return canonicalBytes(context);
}

/**
 * RSA-OAEP-SHA256 encryption of a 32-byte key under `label`.
 * @internal
 */
export async function wrapSecret(publicKey: CryptoKey, secret: Uint8Array, label: Uint8Array, entropy: EntropySource): Promise<Bytes> {
  if (!(secret instanceof Uint8Array) || secret.length !== WRAPPED_SECRET_LENGTH) throw new TypeError('wrap: secret must be 32 bytes');
  return entropy.rsaOaepEncrypt(publicKey, asBytes(secret), asBytes(label));
}

/**
 * RSA-OAEP-SHA256 decryption with `label`, without constraining the plaintext
 * length (the Wycheproof vectors run through here). The ciphertext must be
 * exactly the modulus length (RFC 8017 §7.1.2 step 1b).
 * @internal
 */
export async function rsaOaepDecrypt(privateKey: CryptoKey, ciphertext: Uint8Array, label: Uint8Array): Promise<Bytes> {
  return failClosed(async () => {
    const bits = (privateKey.algorithm as RsaHashedKeyAlgorithm).modulusLength;
    if (!(ciphertext instanceof Uint8Array) || ciphertext.length !== bits / 8) fail();
    const pt = await globalThis.crypto.subtle.decrypt({ name: 'RSA-OAEP', label: asBytes(label) }, privateKey, asBytes(ciphertext));
    return new Uint8Array(pt);
  });
}

/**
 * Unwraps a 32-byte key; a wrong label, key, length or padding is the uniform
 * error. OpenSSL's OAEP decoding (behind WebCrypto in Node and browsers) does
 * not branch on which padding check failed, and we add none.
 * @internal
 */
export async function unwrapSecret(privateKey: CryptoKey, wrapped: Uint8Array, label: Uint8Array): Promise<Bytes> {
  const secret = await rsaOaepDecrypt(privateKey, wrapped, label);
  if (secret.length !== WRAPPED_SECRET_LENGTH) fail();
  return secret;
}
