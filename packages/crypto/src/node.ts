// Entry "@bil/crypto/node": the native (OpenSSL, via node:crypto) backend for
// Node processes. The only shipped file allowed to use Node built-ins (see
// portability.unit.spec.ts); nothing in the main entry imports it, so browser
// bundles never see node:crypto. Everything in the main entry is re-exported so
// a Node app needs one import.
import { createCipheriv, createDecipheriv, createHash, createHmac, createPrivateKey, createPublicKey, getCiphers, hkdfSync, sign, verify, type KeyObject } from 'node:crypto';
import type { Suite } from './aead.js';
import { portableBackend, setCryptoBackend, type CryptoBackend } from './backend.js';
import type { Bytes } from './encoding.js';

export * from './index.js';

const TAG_LENGTH = 16;
/** node:crypto's hkdfSync refuses longer `info` (the protocol's are < 300 bytes). */
const NODE_HKDF_MAX_INFO = 1024;

// A FIPS-restricted OpenSSL may lack ChaCha20-Poly1305; such a suite stays on
// the portable implementation instead of failing every message.
const available = new Set(getCiphers());
const native = (suite: Suite): boolean => available.has(suite);

/**
 * `buf`'s bytes as a plain Uint8Array the caller owns: the same memory when
 * `buf` spans its whole ArrayBuffer (what node:crypto returns for cipher and
 * digest output), a copy otherwise (e.g. a view into Buffer's shared pool,
 * which must never be handed out or wiped).
 */
function owned(buf: Uint8Array): Bytes {
  const ab = buf.buffer;
  if (ab instanceof ArrayBuffer && buf.byteOffset === 0 && buf.byteLength === ab.byteLength) return new Uint8Array(ab);
  return new Uint8Array(buf);
}

function seal(suite: Suite, key: Bytes, nonce: Bytes, plaintext: Bytes, aad: Bytes): Bytes {
  // The two overloads differ only in the algorithm literal type.
  const cipher = createCipheriv(suite as 'aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH });
  cipher.setAAD(aad);
  const body = cipher.update(plaintext);
  const rest = cipher.final(); // empty for GCM and ChaCha20-Poly1305 (stream modes)
  const tag = cipher.getAuthTag();
  const n = plaintext.length;
  if (body.length + rest.length !== n || tag.length !== TAG_LENGTH) throw new Error('aead: unexpected cipher output');
  // One copy, as raw `Buffer.concat([update, final, tag])` makes; not from
  // Buffer's pool (a pooled view would share memory with unrelated buffers),
  // and not zero-filled because every byte is written below.
  const out = new Uint8Array(Buffer.allocUnsafeSlow(n + TAG_LENGTH).buffer, 0, n + TAG_LENGTH);
  out.set(body, 0);
  out.set(rest, body.length);
  out.set(tag, n);
  return out;
}

function open(suite: Suite, key: Bytes, nonce: Bytes, ciphertext: Bytes, aad: Bytes): Bytes {
  // aeadDecrypt already refuses input shorter than a tag; checked again here
  // because setAuthTag would otherwise accept a truncated tag (GCM allows 4..16
  // bytes unless authTagLength pins it, which it also does below).
  const n = ciphertext.length - TAG_LENGTH;
  if (n < 0) throw new Error('aead: short input');
  const tag = ciphertext.subarray(n);
  if (tag.length !== TAG_LENGTH) throw new Error('aead: bad tag length');
  const decipher = createDecipheriv(suite as 'aes-256-gcm', key, nonce, { authTagLength: TAG_LENGTH });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  const body = decipher.update(ciphertext.subarray(0, n));
  let rest: Uint8Array;
  try {
    rest = decipher.final(); // throws unless the whole tag verifies
  } catch (e) {
    body.fill(0); // never keep unauthenticated plaintext around
    throw e;
  }
  if (body.length + rest.length !== n) throw new Error('aead: unexpected cipher output');
  if (rest.length === 0) return owned(body); // always, for these modes: no copy
  const out = new Uint8Array(n);
  out.set(body, 0);
  out.set(rest, body.length);
  body.fill(0);
  return out;
}

/** DER prefixes of an Ed25519 PKCS #8 private key (RFC 8410 §7) and SPKI public key; the 32 key bytes follow. */
const PKCS8_ED25519 = Uint8Array.from([0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20]);
const SPKI_ED25519 = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);

/**
 * Imported Ed25519 private keys, by the seed array they came from (a service
 * signs with the same seed for every job; an import costs more than the
 * signature). Each entry keeps a copy of the seed and is used only while the
 * array still holds those bytes (a caller that wipes or reuses its array gets
 * a fresh import); it goes when the array does.
 */
const privateKeys = new WeakMap<Bytes, { seed: Uint8Array; key: KeyObject; publicKey?: Bytes }>();

function privateKeyOf(secretKey: Bytes): { seed: Uint8Array; key: KeyObject; publicKey?: Bytes } {
  const hit = privateKeys.get(secretKey);
  if (hit && sameBytes(hit.seed, secretKey)) return hit;
  // Not from Buffer's pool (the seed must not linger in shared memory); wiped after import.
  const der = Buffer.allocUnsafeSlow(PKCS8_ED25519.length + 32);
  der.set(PKCS8_ED25519, 0);
  der.set(secretKey, PKCS8_ED25519.length);
  try {
    const entry = { seed: Uint8Array.from(secretKey), key: createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }) };
    privateKeys.set(secretKey, entry);
    return entry;
  } finally {
    der.fill(0);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function ed25519Sign(secretKey: Bytes, message: Bytes): Bytes {
  return owned(sign(null, message, privateKeyOf(secretKey).key));
}

function ed25519PublicKey(secretKey: Bytes): Bytes {
  const entry = privateKeyOf(secretKey);
  entry.publicKey ??= owned(createPublicKey(entry.key).export({ format: 'der', type: 'spki' }).subarray(SPKI_ED25519.length));
  return Uint8Array.from(entry.publicKey);
}

/** Imported public keys by their base64 (not secret), the most recent 4,096: senders' keys repeat. */
const publicKeys = new Map<string, KeyObject>();

function publicKeyOf(publicKey: Bytes): KeyObject {
  const id = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.length).toString('base64');
  let key = publicKeys.get(id);
  if (key) {
    publicKeys.delete(id);
  } else {
    const der = new Uint8Array(SPKI_ED25519.length + 32);
    der.set(SPKI_ED25519, 0);
    der.set(publicKey, SPKI_ED25519.length);
    key = createPublicKey({ key: Buffer.from(der.buffer), format: 'der', type: 'spki' });
    if (publicKeys.size >= 4096) publicKeys.delete(publicKeys.keys().next().value!);
  }
  publicKeys.set(id, key);
  return key;
}

/**
 * True for a canonical point encoding: y < p = 2^255 - 19, and no "negative
 * zero" (the sign bit set where x = 0: y = 1 or y = p - 1). OpenSSL rebuilds R
 * and compares bytes (so a non-canonical R already fails) and checks S < L,
 * but may accept a non-canonical public key; signature.ts's rules refuse it.
 */
function canonicalPoint(p: Bytes): boolean {
  const top = p[31]! & 0x7f;
  const sign = p[31]! & 0x80;
  let middleFF = true;
  let middleZero = true;
  for (let i = 1; i < 31; i++) {
    if (p[i] !== 0xff) middleFF = false;
    if (p[i] !== 0) middleZero = false;
  }
  if (top === 0x7f && middleFF && p[0]! >= 0xed) return false; // y ≥ p
  if (sign !== 0) {
    if (top === 0 && middleZero && p[0] === 1) return false; // y = 1, x = 0
    if (top === 0x7f && middleFF && p[0] === 0xec) return false; // y = p - 1, x = 0
  }
  return true;
}

function ed25519Verify(publicKey: Bytes, message: Bytes, signature: Bytes): boolean {
  if (!canonicalPoint(publicKey)) return false;
  try {
    return verify(null, message, publicKeyOf(publicKey), signature);
  } catch {
    return false;
  }
}

/**
 * The node:crypto backend: OpenSSL AES-256-GCM and ChaCha20-Poly1305 (tags
 * pinned to 16 bytes on both sides), SHA-256, HMAC-SHA256 and HKDF-SHA256.
 * Synchronous and per-call (no key objects are kept). Produces exactly the
 * bytes the portable backend produces; decryption failures surface as the
 * same uniform CannotDecryptError because aeadDecrypt maps any throw to it.
 */
export const nodeCryptoBackend: CryptoBackend = Object.freeze({
  name: 'node',
  aeadSeal(suite: Suite, key: Bytes, nonce: Bytes, plaintext: Bytes, aad: Bytes): Bytes | Promise<Bytes> {
    return native(suite) ? seal(suite, key, nonce, plaintext, aad) : portableBackend.aeadSeal(suite, key, nonce, plaintext, aad);
  },
  aeadOpen(suite: Suite, key: Bytes, nonce: Bytes, ciphertext: Bytes, aad: Bytes): Bytes | Promise<Bytes> {
    return native(suite) ? open(suite, key, nonce, ciphertext, aad) : portableBackend.aeadOpen(suite, key, nonce, ciphertext, aad);
  },
  sha256(data: Bytes): Bytes {
    return owned(createHash('sha256').update(data).digest());
  },
  hmacSha256(key: Bytes, data: Bytes): Bytes {
    return owned(createHmac('sha256', key).update(data).digest());
  },
  hkdfSha256(ikm: Bytes, salt: Bytes, info: Bytes, length: number): Bytes | Promise<Bytes> {
    if (info.length > NODE_HKDF_MAX_INFO) return portableBackend.hkdfSha256(ikm, salt, info, length);
    return new Uint8Array(hkdfSync('sha256', ikm, salt, info, length));
  },
  ed25519Sign,
  ed25519Verify,
  ed25519PublicKey,
  sha256Stream() {
    const h = createHash('sha256');
    return {
      update: (data: Uint8Array) => h.update(data),
      digest: () => owned(h.digest()),
    };
  },
});

/**
 * Runs the library's per-message primitives (AEAD, SHA-256, HMAC, HKDF) and Ed25519 on
 * node:crypto for the whole process. Call once at startup in Node services
 * and Node apps; the wire format is unchanged, so peers on the portable
 * backend (browsers) interoperate. Returns the previously installed backend.
 * @example
 * import { useNodeCrypto } from '@bil/crypto/node';
 * useNodeCrypto();
 */
export function useNodeCrypto(): CryptoBackend {
  return setCryptoBackend(nodeCryptoBackend);
}
