import { AEAD_NONCE_LENGTH, AEAD_TAG_LENGTH, aeadDecrypt, aeadEncrypt, isSuite, type Suite } from './aead.js';
import { canonicalBytes } from './canonical-json.js';
import { deviceMaterial, type VerifiedDevice } from './certificate.js';
import { assertUint, assertUuid, equalBytes, fromBase64Url, isUuid, toBase64Url, wipe, type Bytes } from './encoding.js';
import { fail } from './errors.js';
import { HASH_LENGTH, hkdfSha256, hmacSha256, sha256 } from './kdf.js';
import type { DeviceKeyPair } from './keys.js';
import { MAX_PLAINTEXT_LENGTH, pad, paddedLength, unpad } from './padding.js';
import type { EntropySource } from './random.js';
import { ED25519_SIGNATURE_LENGTH, ed25519Sign, ed25519Verify } from './signature.js';
import { ENVELOPE_FIELDS, ENVELOPE_HEADER_FIELDS, ENVELOPE_HEADER_V1_FIELDS, ENVELOPE_VERSION, LEGACY_ENVELOPE_VERSION, hasExactFields } from './signed-fields.js';

// Envelope format version senders write (header field `v`) and the older one
// still opened (stored history): defined with the header members in signed-fields.ts.
export { ENVELOPE_VERSION, LEGACY_ENVELOPE_VERSION };

/** `direct`: per-message key wrapped to every device; `group`: key derived from the epoch key. */
export type Scheme = 'direct' | 'group';

/**
 * The signed header. Its canonical JSON is the AEAD associated data and, with
 * the ciphertext hash, what the sender device signs (docs/protocol.md).
 */
export interface EnvelopeHeader {
  /** 2 (current); 1 only in envelopes stored before version 2, which lack `epoch_hash` and `recipient_user_id`. */
  readonly v: 1 | 2;
  readonly suite: Suite;
  readonly chat_id: string;
  readonly message_id: string;
  readonly sender_user_id: string;
  readonly sender_device_id: string;
  readonly scheme: Scheme;
  /** Group epoch (≥ 1); 0 for direct messages. */
  readonly epoch: number;
  /** v2, group: the record hash of the epoch the sender used (binds the message to one history); direct: "". */
  readonly epoch_hash?: string;
  /** v2, direct: the other user of the personal chat; group: "". */
  readonly recipient_user_id?: string;
  /** Per (chat, sender device) counter starting at 1; recipients detect replays and gaps with it. */
  readonly counter: number;
  /** Sender's clock, milliseconds since the Unix epoch. */
  readonly timestamp: number;
  /** 12-byte AEAD nonce, base64url. */
  readonly nonce: string;
  /** HMAC-SHA256 key commitment, base64url. */
  readonly commitment: string;
}

/** What the chat service stores as the message body: opaque to it. */
export interface Envelope {
  readonly header: EnvelopeHeader;
  /** AEAD output (padded plaintext ‖ 16-byte tag), base64url. */
  readonly ciphertext: string;
  /** Ed25519 signature of the sender device, base64url. */
  readonly signature: string;
}

/** One `message_keys` (or `group_keys`) row: a key wrapped for one device. */
export interface WrappedKey {
  readonly device_id: string;
  readonly wrapped_key: string;
}

/** A direct-scheme message: the envelope plus one wrapped key per recipient device. */
export interface DirectMessage {
  readonly envelope: Envelope;
  readonly wrapped_keys: readonly WrappedKey[];
}

/** This device: its ids and its own key pairs. */
export interface LocalDevice {
  readonly userId: string;
  readonly deviceId: string;
  readonly keys: DeviceKeyPair;
}

/** A decrypted, authenticated message. */
export interface OpenedMessage {
  readonly header: EnvelopeHeader;
  readonly plaintext: Bytes;
}

/** Purposes (labels and HKDF info) of suite v1; each is used for exactly one thing. */
export const PURPOSE = {
  aeadKey: 'bil.aead-key.v1',
  keyCommitment: 'bil.key-commitment.v1',
  messageKey: 'bil.message-key.v1',
  envelopeSignature: 'bil.envelope-signature.v1',
} as const;

const MAX_CIPHERTEXT_LENGTH = paddedLength(MAX_PLAINTEXT_LENGTH) + AEAD_TAG_LENGTH;

/** Header fields the caller fixes; nonce and commitment are added by {@link encryptWithKey}. @internal */
export type HeaderFields = Omit<EnvelopeHeader, 'nonce' | 'commitment'>;

/**
 * Per-message subkeys from content key K: the AEAD key (HKDF-SHA256, RFC 5869,
 * empty salt) and the key commitment HMAC-SHA256(K, label) over `id`. A second
 * K' with the same commitment needs an HMAC collision, so one ciphertext can't
 * decrypt to two plaintexts under two keys (the "invisible salamanders" of
 * Dodis et al. 2018, which GCM and Poly1305 alone allow).
 * @internal
 */
export async function contentSubkeys(key: Uint8Array, id: string): Promise<{ aeadKey: Bytes; commitment: Bytes }> {
  const aeadKey = await hkdfSha256(key, new Uint8Array(), canonicalBytes({ purpose: PURPOSE.aeadKey }), 32);
  const commitment = await hmacSha256(key, canonicalBytes({ purpose: PURPOSE.keyCommitment, id }));
  return { aeadKey, commitment };
}

/**
 * Pads and encrypts under content key K, filling in nonce and commitment; the
 * canonical header is the associated data. `id` is what the commitment binds.
 * @internal
 */
export async function encryptWithKey<H extends object>(
  suite: Suite,
  key: Uint8Array,
  id: string,
  fields: H,
  plaintext: Uint8Array,
  entropy: EntropySource,
): Promise<{ header: H & { nonce: string; commitment: string }; ciphertext: Bytes }> {
  const nonce = entropy.randomBytes(AEAD_NONCE_LENGTH);
  const { aeadKey, commitment } = await contentSubkeys(key, id);
  const header = { ...fields, nonce: toBase64Url(nonce), commitment: toBase64Url(commitment) };
  const padded = pad(plaintext);
  try {
    const ciphertext = await aeadEncrypt(suite, aeadKey, nonce, padded, canonicalBytes(header as never));
    return { header, ciphertext };
  } finally {
    wipe(aeadKey, padded);
  }
}

/**
 * Checks the key commitment in constant time, then decrypts and unpads.
 * @internal
 */
export async function decryptWithKey(
  suite: Suite,
  key: Uint8Array,
  id: string,
  header: { readonly nonce: string; readonly commitment: string },
  ciphertext: Uint8Array,
): Promise<Bytes> {
  const { aeadKey, commitment } = await contentSubkeys(key, id);
  let padded: Bytes | undefined;
  try {
    if (!equalBytes(commitment, fromBase64Url(header.commitment, HASH_LENGTH))) fail();
    padded = await aeadDecrypt(suite, aeadKey, fromBase64Url(header.nonce, AEAD_NONCE_LENGTH), ciphertext, canonicalBytes(header as never));
    return unpad(padded);
  } finally {
    wipe(aeadKey, padded);
  }
}

/**
 * What the sender device signs: canonical JSON of the header and the SHA-256
 * of the ciphertext. Signing the ciphertext too means a recipient who knows
 * the content key (every group member does) can't re-encrypt under the
 * sender's signed header.
 * @internal
 */
export async function envelopeSignatureInput(header: EnvelopeHeader, ciphertext: Uint8Array): Promise<Bytes> {
  return canonicalBytes({ type: PURPOSE.envelopeSignature, header: { ...header }, ciphertext_sha256: toBase64Url(await sha256(ciphertext)) });
}

/** An envelope whose shape checked out, with its byte fields decoded once. @internal */
export interface ParsedEnvelope {
  readonly envelope: Envelope;
  readonly ciphertext: Bytes;
  readonly signature: Bytes;
}

/** Checks the common header and envelope shape; throws on anything unexpected. @internal */
export function parseEnvelope(value: unknown): ParsedEnvelope {
  if (typeof value !== 'object' || value === null) fail();
  const e = value as Record<string, unknown>;
  if (!hasExactFields(e, ENVELOPE_FIELDS)) fail();
  const h = e.header as Record<string, unknown>;
  if (typeof h !== 'object' || h === null || Array.isArray(h)) fail();
  const keys = Object.keys(h).sort().join();
  if (h.v === ENVELOPE_VERSION) {
    if (keys !== ENVELOPE_HEADER_FIELDS.text) fail();
    // Group: the hash of an epoch record (32 bytes); direct: "". Direct: the other user; group: "".
    if (h.scheme === 'group') fromBase64Url(h.epoch_hash as string, HASH_LENGTH);
    else if (h.epoch_hash !== '') fail();
    if (h.scheme === 'direct' ? !isUuid(h.recipient_user_id) || h.recipient_user_id === h.sender_user_id : h.recipient_user_id !== '') fail();
  } else if (h.v !== LEGACY_ENVELOPE_VERSION || keys !== ENVELOPE_HEADER_V1_FIELDS.text) fail();
  if (!isSuite(h.suite)) fail();
  if (!isUuid(h.chat_id) || !isUuid(h.message_id) || !isUuid(h.sender_user_id) || !isUuid(h.sender_device_id)) fail();
  if (h.scheme !== 'direct' && h.scheme !== 'group') fail();
  for (const n of [h.epoch, h.counter, h.timestamp]) if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) fail();
  if ((h.scheme === 'direct') !== (h.epoch === 0) || (h.counter as number) < 1) fail();
  fromBase64Url(h.nonce as string, AEAD_NONCE_LENGTH);
  fromBase64Url(h.commitment as string, HASH_LENGTH);
  if (typeof e.ciphertext !== 'string' || e.ciphertext.length > (MAX_CIPHERTEXT_LENGTH * 4) / 3 + 4) fail();
  const ciphertext = fromBase64Url(e.ciphertext);
  if (ciphertext.length < AEAD_TAG_LENGTH + 256) fail();
  const signature = fromBase64Url(e.signature as string, ED25519_SIGNATURE_LENGTH);
  const header = { ...h } as unknown as EnvelopeHeader;
  return { envelope: { header, ciphertext: e.ciphertext, signature: e.signature as string }, ciphertext, signature };
}

/**
 * Parses and shape-checks an envelope and returns its header WITHOUT
 * authenticating it: use it only to route (find the sender's device record or
 * the epoch key), never to display. Malformed input is {@link CannotDecryptError}.
 * @example
 * const { sender_user_id, sender_device_id, epoch } = readEnvelopeHeader(stored);
 */
export function readEnvelopeHeader(envelope: unknown): EnvelopeHeader {
  try {
    return parseEnvelope(envelope).envelope.header;
  } catch {
    return fail();
  }
}

/**
 * Checks that a parsed envelope names the expected chat and sender, and
 * verifies the sender device's signature. Takes the {@link parseEnvelope}
 * result so a large ciphertext is decoded once even when the caller first
 * routes on the header.
 * @internal
 */
export async function verifyEnvelope(
  parsed: ParsedEnvelope,
  expected: { chatId: string; scheme: Scheme; sender: VerifiedDevice },
): Promise<{ header: EnvelopeHeader; ciphertext: Bytes }> {
  const { envelope, ciphertext, signature } = parsed;
  const h = envelope.header;
  if (h.scheme !== expected.scheme || h.chat_id !== expected.chatId) fail();
  if (h.sender_user_id !== expected.sender.userId || h.sender_device_id !== expected.sender.deviceId) fail();
  const { signingKey } = deviceMaterial(expected.sender);
  if (!ed25519Verify(signingKey, await envelopeSignatureInput(h, ciphertext), signature)) fail();
  return { header: h, ciphertext };
}

/** Signs a finished header and ciphertext into an {@link Envelope}. @internal */
export async function signEnvelope(sender: LocalDevice, header: EnvelopeHeader, ciphertext: Uint8Array): Promise<Envelope> {
  const signature = ed25519Sign(sender.keys.signing.secretKey, await envelopeSignatureInput(header, ciphertext));
  return { header, ciphertext: toBase64Url(ciphertext), signature: toBase64Url(signature) };
}

/** Entry checks shared by both schemes. @internal */
export function checkSendParams(p: {
  sender: LocalDevice;
  chatId: string;
  messageId: string;
  counter: number;
  timestamp: number;
  plaintext: Uint8Array;
  suite?: Suite;
}): Suite {
  if (typeof p.sender !== 'object' || p.sender === null) throw new TypeError('sender: expected LocalDevice');
  assertUuid(p.sender.userId, 'sender.userId');
  assertUuid(p.sender.deviceId, 'sender.deviceId');
  assertUuid(p.chatId, 'chatId');
  assertUuid(p.messageId, 'messageId');
  assertUint(p.counter, 'counter');
  if (p.counter < 1) throw new RangeError('counter: starts at 1');
  assertUint(p.timestamp, 'timestamp');
  if (!(p.plaintext instanceof Uint8Array)) throw new TypeError('plaintext: expected Uint8Array');
  if (p.plaintext.length > MAX_PLAINTEXT_LENGTH) throw new RangeError('plaintext: too long');
  const suite = p.suite ?? 'aes-256-gcm';
  if (!isSuite(suite)) throw new TypeError('suite: unknown');
  return suite;
}

