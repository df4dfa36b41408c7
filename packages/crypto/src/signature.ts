import { ed25519 } from '@noble/curves/ed25519.js';
import { backend } from './backend.js';
import { asBytes, type Bytes } from './encoding.js';

/** Ed25519 (RFC 8032 §5.1) lengths. */
export const ED25519_PUBLIC_KEY_LENGTH = 32;
export const ED25519_SECRET_KEY_LENGTH = 32;
export const ED25519_SIGNATURE_LENGTH = 64;

/** An Ed25519 key pair; the secret key is the 32-byte seed of RFC 8032 §5.1.5. */
export interface Ed25519KeyPair {
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

/**
 * Creates an Ed25519 key pair, from `seed` if given (32 bytes), else at random.
 * @example
 * const { publicKey, secretKey } = generateEd25519KeyPair();
 */
export function generateEd25519KeyPair(seed?: Uint8Array): Ed25519KeyPair {
  if (seed !== undefined && (!(seed instanceof Uint8Array) || seed.length !== ED25519_SECRET_KEY_LENGTH)) {
    throw new TypeError('ed25519: seed must be 32 bytes');
  }
  const secretKey = seed ? Uint8Array.from(seed) : ed25519.utils.randomSecretKey();
  return { secretKey, publicKey: ed25519.getPublicKey(secretKey) };
}

/** Public key for a 32-byte Ed25519 seed. */
export function ed25519PublicKey(secretKey: Uint8Array): Bytes {
  if (!(secretKey instanceof Uint8Array) || secretKey.length !== ED25519_SECRET_KEY_LENGTH) throw new TypeError('ed25519: secret key must be 32 bytes');
  const native = backend().ed25519PublicKey;
  return native ? native(asBytes(secretKey)) : asBytes(ed25519.getPublicKey(secretKey));
}

/**
 * Signs with Ed25519 (RFC 8032 §5.1.6); deterministic.
 * @example
 * const sig = ed25519Sign(secretKey, utf8('message'));
 */
export function ed25519Sign(secretKey: Uint8Array, message: Uint8Array): Bytes {
  if (!(secretKey instanceof Uint8Array) || secretKey.length !== ED25519_SECRET_KEY_LENGTH) throw new TypeError('ed25519: secret key must be 32 bytes');
  if (!(message instanceof Uint8Array)) throw new TypeError('ed25519: expected bytes');
  const native = backend().ed25519Sign;
  return native ? native(asBytes(secretKey), asBytes(message)) : asBytes(ed25519.sign(message, secretKey));
}

/**
 * Verifies an Ed25519 signature strictly as RFC 8032 §5.1.7 says (not ZIP-215):
 * non-canonical point encodings and S ≥ L are refused, so a signature has one
 * encoding and verifiers agree. Never throws; wrong lengths give false.
 * @example
 * ed25519Verify(publicKey, utf8('message'), sig); // true
 */
export function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== ED25519_PUBLIC_KEY_LENGTH) return false;
  if (!(signature instanceof Uint8Array) || signature.length !== ED25519_SIGNATURE_LENGTH) return false;
  if (!(message instanceof Uint8Array)) return false;
  const native = backend().ed25519Verify;
  if (native) return native(asBytes(publicKey), asBytes(message), asBytes(signature));
  try {
    return ed25519.verify(signature, message, publicKey, { zip215: false });
  } catch {
    return false;
  }
}

/**
 * True for a canonically encoded Ed25519 point that is not of small order. Small-
 * order keys let many messages share one signature, so keys we accept into the
 * directory must not be one.
 */
export function isValidEd25519PublicKey(publicKey: Uint8Array): boolean {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== ED25519_PUBLIC_KEY_LENGTH) return false;
  try {
    return !ed25519.Point.fromBytes(publicKey, false).isSmallOrder();
  } catch {
    return false;
  }
}
