import { asBytes, equalBytes, fromBase64Url, toBase64Url, wipe, type Bytes } from './encoding.js';
import { fail, failClosed } from './errors.js';
import { ed25519PublicKey, generateEd25519KeyPair, isValidEd25519PublicKey, type Ed25519KeyPair } from './signature.js';

const subtle = (): SubtleCrypto => globalThis.crypto.subtle;

/**
 * RSA-OAEP with SHA-256 for OAEP and MGF1 (RFC 8017 §7.1). WebCrypto uses the
 * same hash for both, which is exactly what the protocol needs; Node's
 * `publicEncrypt` would silently default to SHA-1.
 */
const RSA_OAEP: RsaHashedImportParams = { name: 'RSA-OAEP', hash: 'SHA-256' };

/** Modulus sizes accepted for device and service encryption keys. */
export const RSA_MODULUS_BITS = [3072, 4096] as const;
export type RsaModulusBits = (typeof RSA_MODULUS_BITS)[number];

const F4 = new Uint8Array([1, 0, 1]);

/** A device's two key pairs (docs/protocol.md, "Device keys"). */
export interface DeviceKeyPair {
  /** RSA-OAEP key pair for receiving wrapped keys; `spki` is the DER public key. */
  readonly encryption: { readonly publicKey: CryptoKey; readonly privateKey: CryptoKey; readonly spki: Uint8Array };
  /** Ed25519 key pair signing everything the device sends. */
  readonly signing: Ed25519KeyPair;
}

/** Public halves in their wire encodings, as registered with the identity service. */
export interface DevicePublicKeys {
  /** DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7), base64url. */
  readonly encryption_key: string;
  /** Raw 32-byte Ed25519 public key (RFC 8032 §5.1.5), base64url. */
  readonly signing_key: string;
}

/** Private halves for a device key store. Treat the whole object as a secret. */
export interface ExportedDeviceKeys {
  readonly version: 1;
  /** RSA private key, PKCS #8 DER (RFC 5208), base64url. */
  readonly encryption_key_pkcs8: string;
  /** Ed25519 32-byte seed, base64url. */
  readonly signing_key_seed: string;
}

/**
 * Generates a device's RSA-OAEP-3072 (or 4096) and Ed25519 key pairs.
 * `extractable: false` keeps the RSA private key inside WebCrypto (it can still
 * be stored in IndexedDB as a CryptoKey) but then it can't be exported.
 * @example
 * const keys = await generateDeviceKeys();
 * const pub = exportDevicePublicKeys(keys); // { encryption_key, signing_key }
 */
export async function generateDeviceKeys(options: { modulusBits?: RsaModulusBits; extractable?: boolean } = {}): Promise<DeviceKeyPair> {
  const modulusLength = options.modulusBits ?? 3072;
  if (!RSA_MODULUS_BITS.includes(modulusLength)) throw new RangeError('device keys: modulus must be 3072 or 4096 bits');
  const pair = await subtle().generateKey({ ...RSA_OAEP, modulusLength, publicExponent: F4 }, options.extractable ?? true, [
    'encrypt',
    'decrypt',
  ]);
  const spki = new Uint8Array(await subtle().exportKey('spki', pair.publicKey));
  return { encryption: { publicKey: pair.publicKey, privateKey: pair.privateKey, spki }, signing: generateEd25519KeyPair() };
}

/**
 * The public keys in the encodings of docs/protocol.md.
 * @example
 * const { encryption_key, signing_key } = exportDevicePublicKeys(keys);
 */
export function exportDevicePublicKeys(keys: DeviceKeyPair): DevicePublicKeys {
  return { encryption_key: toBase64Url(keys.encryption.spki), signing_key: toBase64Url(keys.signing.publicKey) };
}

/**
 * Exports the private keys for a key store (requires an extractable RSA key).
 * @example
 * const stored = await exportDevicePrivateKeys(keys);
 * const again = await importDevicePrivateKeys(stored);
 */
export async function exportDevicePrivateKeys(keys: DeviceKeyPair): Promise<ExportedDeviceKeys> {
  const pkcs8 = new Uint8Array(await subtle().exportKey('pkcs8', keys.encryption.privateKey));
  const out: ExportedDeviceKeys = {
    version: 1,
    encryption_key_pkcs8: toBase64Url(pkcs8),
    signing_key_seed: toBase64Url(keys.signing.secretKey),
  };
  wipe(pkcs8);
  return out;
}

/**
 * Restores device keys from {@link exportDevicePrivateKeys} output. The RSA key
 * must meet the same rules as a peer's public key (3072/4096 bits, e = 65537).
 * @example
 * const keys = await importDevicePrivateKeys(stored, { extractable: false });
 */
export async function importDevicePrivateKeys(exported: ExportedDeviceKeys, options: { extractable?: boolean } = {}): Promise<DeviceKeyPair> {
  if (typeof exported !== 'object' || exported === null || exported.version !== 1) throw new TypeError('device keys: unknown format');
  const seed = fromBase64Url(exported.signing_key_seed, 32);
  const pkcs8 = fromBase64Url(exported.encryption_key_pkcs8);
  try {
    const privateKey = await importEncryptionPrivateKey(pkcs8, options);
    // WebCrypto can't derive a public key from a private one directly; the
    // private JWK carries n and e (RFC 7518 §6.3.1), so rebuild it from those.
    const probe = await subtle().importKey('pkcs8', pkcs8, RSA_OAEP, true, ['decrypt']);
    const jwk = await subtle().exportKey('jwk', probe);
    const publicKey = await subtle().importKey('jwk', { kty: 'RSA', n: jwk.n, e: jwk.e, alg: 'RSA-OAEP-256', ext: true }, RSA_OAEP, true, ['encrypt']);
    const spki = new Uint8Array(await subtle().exportKey('spki', publicKey));
    return { encryption: { publicKey, privateKey, spki }, signing: { secretKey: seed, publicKey: ed25519PublicKey(seed) } };
  } finally {
    wipe(pkcs8);
  }
}

function checkRsaAlgorithm(key: CryptoKey): void {
  const alg = key.algorithm as RsaHashedKeyAlgorithm;
  if (alg.name !== 'RSA-OAEP' || alg.hash.name !== 'SHA-256') fail();
  if (!RSA_MODULUS_BITS.includes(alg.modulusLength as RsaModulusBits)) fail();
  let e = alg.publicExponent;
  while (e.length > 1 && e[0] === 0) e = e.subarray(1);
  if (!equalBytes(e, F4)) fail();
}

/**
 * Imports a peer's RSA encryption key from SPKI DER (bytes or base64url) and
 * enforces the protocol's rules: rsaEncryption, 3072 or 4096 bits, e = 65537,
 * and DER that re-encodes to the same bytes (no alternative encodings).
 * Anything else is {@link CannotDecryptError}: a 2048-bit key is refused.
 * @example
 * const key = await importEncryptionPublicKey(record.encryption_key);
 */
export async function importEncryptionPublicKey(spki: Uint8Array | string): Promise<CryptoKey> {
  return failClosed(async () => {
    const der = typeof spki === 'string' ? fromBase64Url(spki) : asBytes(spki);
    if (!(der instanceof Uint8Array) || der.length > 2048) fail();
    const key = await subtle().importKey('spki', der, RSA_OAEP, true, ['encrypt']);
    checkRsaAlgorithm(key);
    if (!equalBytes(new Uint8Array(await subtle().exportKey('spki', key)), der)) fail();
    return key;
  });
}

/**
 * Imports an RSA private key (PKCS #8 DER) for unwrapping, with the same size
 * and exponent rules as {@link importEncryptionPublicKey}.
 * @example
 * const privateKey = await importEncryptionPrivateKey(pkcs8);
 */
export async function importEncryptionPrivateKey(pkcs8: Uint8Array, options: { extractable?: boolean } = {}): Promise<CryptoKey> {
  return failClosed(async () => {
    const key = await subtle().importKey('pkcs8', asBytes(pkcs8), RSA_OAEP, options.extractable ?? true, ['decrypt']);
    checkRsaAlgorithm(key);
    return key;
  });
}

/**
 * Parses a raw Ed25519 public key (base64url or bytes), refusing wrong lengths,
 * non-canonical encodings and small-order points with {@link CannotDecryptError}.
 * @example
 * const signingKey = parseSigningKey(record.signing_key);
 */
export function parseSigningKey(key: string | Uint8Array): Bytes {
  try {
    const bytes = typeof key === 'string' ? fromBase64Url(key, 32) : asBytes(key);
    if (isValidEd25519PublicKey(bytes)) return bytes;
  } catch {
    /* fall through to the uniform error */
  }
  return fail();
}

/**
 * An account identity key pair (Ed25519), created by the account's first device.
 * @example
 * const identity = generateIdentityKey();
 * toBase64Url(identity.publicKey); // published in the key directory
 */
export function generateIdentityKey(): Ed25519KeyPair {
  return generateEd25519KeyPair();
}

/**
 * Rebuilds an identity (or service identity) key pair from its stored 32-byte
 * seed (RFC 8032 §5.1.5), e.g. a service key loaded from a secret store.
 * @example
 * const identity = identityKeyFromSeed(fromBase64Url(process.env.DIGEST_IDENTITY_SEED!, 32));
 */
export function identityKeyFromSeed(seed: Uint8Array): Ed25519KeyPair {
  return generateEd25519KeyPair(seed);
}

/** Zeroes the signing seed of device keys (WebCrypto keys can't be wiped). */
export function disposeDeviceKeys(keys: DeviceKeyPair): void {
  wipe(keys.signing.secretKey);
}
