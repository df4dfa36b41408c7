import { sha256 as sha256Sync } from '@noble/hashes/sha2.js';
import { isSuite, type Suite } from './aead.js';
import { canonicalBytes } from './canonical-json.js';
import { deviceMaterial, type VerifiedDevice } from './certificate.js';
import { abytes, assertUint, equalBytes, equalStrings, fromBase64Url, toBase64Url, wipe, type Bytes } from './encoding.js';
import { decryptWithKey, encryptWithKey } from './envelope.js';
import { fail, failClosed } from './errors.js';
import { HASH_LENGTH, sha256 } from './kdf.js';
import { importEncryptionPublicKey, parseSigningKey } from './keys.js';
import { AEAD_NONCE_LENGTH, AEAD_TAG_LENGTH } from './aead.js';
import { systemEntropy, type EntropySource } from './random.js';
import { ED25519_SIGNATURE_LENGTH, ed25519PublicKey, ed25519Sign, ed25519Verify, type Ed25519KeyPair } from './signature.js';
import { oaepLabel, unwrapSecret, wrapSecret } from './wrap.js';

export const SERVICE_KEY_TYPE = 'bil.service-key.v1' as const;
export const SEALED_TYPE = 'bil.sealed.v1' as const;
export const SEAL_PURPOSE = { sealedKey: 'bil.sealed-key.v1', sealedSignature: 'bil.sealed-signature.v1' } as const;

/** A service's published encryption key, signed by its pinned service identity key. */
export interface ServiceKeyPayload {
  readonly type: typeof SERVICE_KEY_TYPE;
  /** Service name, e.g. "digest". */
  readonly service: string;
  /** base64url SHA-256 of the SPKI DER. */
  readonly key_id: string;
  /** RSA SPKI DER, base64url (same rules as device keys). */
  readonly encryption_key: string;
  readonly issued_at: number;
  readonly expires_at: number;
}

export interface SignedServiceKey {
  readonly payload: ServiceKeyPayload;
  /** Ed25519 signature by the service identity key over canonical JSON of `payload`, base64url. */
  readonly signature: string;
}

/** Someone a payload can be sealed to: a verified service key or a verified device. */
export interface SealRecipient {
  readonly keyId: string;
}

/** The signed, authenticated header of a sealed box. */
export interface SealedHeader {
  readonly v: 1;
  readonly type: typeof SEALED_TYPE;
  readonly suite: Suite;
  /** Recipient key id: base64url SHA-256 of its SPKI DER. */
  readonly key_id: string;
  /** What the payload is, e.g. "digest-request", "digest-result". */
  readonly kind: string;
  /** What it belongs to, e.g. a digest job id. */
  readonly context: string;
  readonly created_at: number;
  /** Ed25519 public key of the signer, base64url; "" if unsigned. */
  readonly signer_key: string;
  readonly nonce: string;
  readonly commitment: string;
}

/** A payload sealed to one recipient key. */
export interface SealedBox {
  readonly header: SealedHeader;
  readonly wrapped_key: string;
  readonly ciphertext: string;
  /** Signature by `header.signer_key`, base64url; "" if unsigned. */
  readonly signature: string;
}

const recipients = new WeakMap<SealRecipient, CryptoKey>();

function makeRecipient(keyId: string, key: CryptoKey): SealRecipient {
  const r: SealRecipient = Object.freeze({ keyId });
  recipients.set(r, key);
  return r;
}

/**
 * The key id of an RSA public key: base64url SHA-256 of its SPKI DER.
 * @example
 * const keyId = await sealKeyId(keys.encryption.spki);
 */
export async function sealKeyId(spki: Uint8Array): Promise<string> {
  abytes(spki);
  return toBase64Url(await sha256(spki));
}

/**
 * Signs a service's encryption key with the service identity key (whose
 * public half clients pin in their configuration).
 * @example
 * const published = await signServiceKey({ identity, service: 'digest', encryptionKey: keys.encryption.spki, issuedAt, expiresAt });
 */
export async function signServiceKey(params: {
  identity: Ed25519KeyPair;
  service: string;
  encryptionKey: Uint8Array;
  issuedAt: number;
  expiresAt: number;
}): Promise<SignedServiceKey> {
  const { identity, service, encryptionKey, issuedAt, expiresAt } = params;
  if (typeof service !== 'string' || service.length === 0 || service.length > 64) throw new TypeError('service: expected a name');
  assertUint(issuedAt, 'issuedAt');
  assertUint(expiresAt, 'expiresAt');
  if (expiresAt <= issuedAt) throw new RangeError('expiresAt: must be after issuedAt');
  await importEncryptionPublicKey(encryptionKey);
  const payload: ServiceKeyPayload = {
    type: SERVICE_KEY_TYPE,
    service,
    key_id: await sealKeyId(encryptionKey),
    encryption_key: toBase64Url(encryptionKey),
    issued_at: issuedAt,
    expires_at: expiresAt,
  };
  return { payload, signature: toBase64Url(ed25519Sign(identity.secretKey, canonicalBytes(payload as never))) };
}

/**
 * The fingerprint people compare for a service identity key (the digest
 * service's, docs/deploy.md): SHA-256 of the 32 key bytes, the first 16 bytes
 * as 32 hex digits in groups of 4. Throws TypeError for a malformed key.
 * @example
 * serviceKeyFingerprint('b706pwa4mYfc-hYL3fn40eoly63i2bRvIocW8B2QpSU'); // 'd30f 1ee9 6d8e ff43 a18b a584 c25c 4ef4'
 */
export function serviceKeyFingerprint(identityKey: string): string {
  let bytes: Bytes;
  try {
    bytes = fromBase64Url(identityKey, 32);
  } catch {
    throw new TypeError('identityKey: expected 32 bytes, base64url');
  }
  const hex = Array.from(sha256Sync(bytes).subarray(0, 16), (b) => b.toString(16).padStart(2, '0')).join('');
  return hex.match(/.{4}/g)!.join(' ');
}

/**
 * Verifies a published service key against the pinned service identity key,
 * the expected service name and validity period, and returns a recipient to
 * seal to. Any failure is {@link CannotDecryptError}.
 * @example
 * const digest = await verifyServiceKey(published, { identityKey: config.digestIdentityKey, service: 'digest', now: Date.now() });
 */
export async function verifyServiceKey(
  signed: SignedServiceKey,
  expected: { identityKey: string | Uint8Array; service: string; now: number },
): Promise<SealRecipient> {
  return failClosed(async () => {
    const p = signed.payload;
    if (Object.keys(p).sort().join() !== 'encryption_key,expires_at,issued_at,key_id,service,type') fail();
    if (p.type !== SERVICE_KEY_TYPE || p.service !== expected.service) fail();
    if (!Number.isSafeInteger(p.issued_at) || !Number.isSafeInteger(p.expires_at)) fail();
    if (!(p.issued_at <= expected.now && expected.now < p.expires_at)) fail();
    const identityKey = parseSigningKey(expected.identityKey);
    if (!ed25519Verify(identityKey, canonicalBytes(p as never), fromBase64Url(signed.signature, ED25519_SIGNATURE_LENGTH))) fail();
    const spki = fromBase64Url(p.encryption_key);
    if (!equalStrings(await sealKeyId(spki), p.key_id)) fail();
    return makeRecipient(p.key_id, await importEncryptionPublicKey(spki));
  });
}

/**
 * A seal recipient for a verified device (e.g. the digest worker sealing a
 * summary to the requesting device).
 * @example
 * const to = await sealRecipientForDevice(requestingDevice);
 */
export async function sealRecipientForDevice(device: VerifiedDevice): Promise<SealRecipient> {
  const { encryptionKey } = deviceMaterial(device);
  return makeRecipient(await sealKeyId(fromBase64Url(device.encryptionKey)), encryptionKey);
}

function sealLabel(h: { key_id: string; kind: string; context: string }): Bytes {
  return oaepLabel({ purpose: SEAL_PURPOSE.sealedKey, key_id: h.key_id, kind: h.kind, context: h.context });
}

async function sealSignatureInput(header: SealedHeader, ciphertext: Uint8Array): Promise<Bytes> {
  return canonicalBytes({ type: SEAL_PURPOSE.sealedSignature, header: { ...header }, ciphertext_sha256: toBase64Url(await sha256(ciphertext)) });
}

/**
 * Seals a payload to one recipient with the envelope construction: fresh
 * content key wrapped with RSA-OAEP (label binds key id, kind and context),
 * padded plaintext under AES-256-GCM or ChaCha20-Poly1305 with the header as
 * associated data, key commitment, and optionally an Ed25519 signature.
 * @example
 * const box = await sealPayload({ to: digest, kind: 'digest-request', context: jobId, createdAt: Date.now(),
 *   plaintext: utf8(transcript), signer: me.keys.signing });
 */
export async function sealPayload(
  params: {
    to: SealRecipient;
    kind: string;
    context: string;
    createdAt: number;
    plaintext: Uint8Array;
    signer?: Ed25519KeyPair;
    suite?: Suite;
  },
  entropy: EntropySource = systemEntropy,
): Promise<SealedBox> {
  const { to, kind, context, createdAt, plaintext, signer } = params;
  const publicKey = typeof to === 'object' && to !== null ? recipients.get(to) : undefined;
  if (!publicKey) throw new TypeError('to: not a verified SealRecipient');
  if (typeof kind !== 'string' || kind.length === 0 || kind.length > 64) throw new TypeError('kind: expected a short string');
  if (typeof context !== 'string' || context.length > 256) throw new TypeError('context: expected a string');
  assertUint(createdAt, 'createdAt');
  abytes(plaintext, undefined, 'plaintext');
  const suite = params.suite ?? 'aes-256-gcm';
  if (!isSuite(suite)) throw new TypeError('suite: unknown');
  const fields = {
    v: 1 as const,
    type: SEALED_TYPE,
    suite,
    key_id: to.keyId,
    kind,
    context,
    created_at: createdAt,
    signer_key: signer ? toBase64Url(ed25519PublicKey(signer.secretKey)) : '',
  };
  const key = entropy.randomBytes(32);
  try {
    const { header, ciphertext } = await encryptWithKey(suite, key, context, fields, plaintext, entropy);
    const wrapped = await wrapSecret(publicKey, key, sealLabel(header), entropy);
    const signature = signer ? toBase64Url(ed25519Sign(signer.secretKey, await sealSignatureInput(header, ciphertext))) : '';
    return { header, wrapped_key: toBase64Url(wrapped), ciphertext: toBase64Url(ciphertext), signature };
  } finally {
    wipe(key);
  }
}

/**
 * Opens a sealed box with the recipient's RSA private key. `kind` and
 * `context` must be what the caller expects. With `signerKey`, the box must be
 * signed by exactly that key; without it, a signature present is still
 * checked and `signerKey` is returned for the caller to judge. Any failure is
 * {@link CannotDecryptError}.
 * @example
 * const { plaintext } = await openSealedPayload(box, { privateKey, keyId, kind: 'digest-request', context: jobId });
 */
export async function openSealedPayload(
  box: unknown,
  expected: { privateKey: CryptoKey; keyId: string; kind: string; context: string; signerKey?: string | Uint8Array },
): Promise<{ plaintext: Bytes; header: SealedHeader; signerKey: string }> {
  return failClosed(async () => {
    if (typeof box !== 'object' || box === null || Object.keys(box).sort().join() !== 'ciphertext,header,signature,wrapped_key') fail();
    const b = box as SealedBox;
    const h = b.header;
    if (typeof h !== 'object' || h === null) fail();
    if (Object.keys(h).sort().join() !== 'commitment,context,created_at,key_id,kind,nonce,signer_key,suite,type,v') fail();
    if (h.v !== 1 || h.type !== SEALED_TYPE || !isSuite(h.suite)) fail();
    if (!Number.isSafeInteger(h.created_at) || h.created_at < 0) fail();
    if (h.key_id !== expected.keyId || h.kind !== expected.kind || h.context !== expected.context) fail();
    fromBase64Url(h.nonce, AEAD_NONCE_LENGTH);
    fromBase64Url(h.commitment, HASH_LENGTH);
    const ciphertext = fromBase64Url(b.ciphertext);
    if (ciphertext.length < AEAD_TAG_LENGTH) fail();
    const header: SealedHeader = { ...h };
    if (expected.signerKey !== undefined) {
      const want = typeof expected.signerKey === 'string' ? fromBase64Url(expected.signerKey, 32) : expected.signerKey;
      if (h.signer_key === '' || !equalBytes(want, fromBase64Url(h.signer_key, 32))) fail();
    }
    if (h.signer_key !== '') {
      const sig = fromBase64Url(b.signature, ED25519_SIGNATURE_LENGTH);
      if (!ed25519Verify(parseSigningKey(h.signer_key), await sealSignatureInput(header, ciphertext), sig)) fail();
    } else if (b.signature !== '') fail();
    const key = await unwrapSecret(expected.privateKey, fromBase64Url(b.wrapped_key), sealLabel(header));
    try {
      const plaintext = await decryptWithKey(header.suite, key, header.context, header, ciphertext);
      return { plaintext, header, signerKey: header.signer_key };
    } finally {
      wipe(key);
    }
  });
}
