// Group metadata (the title, and later other group settings) travels inside
// the signed epoch record, encrypted under a key derived from the epoch key:
// the server stores and forwards it without reading it, and only the admin
// who signed the record could have set it (docs/protocol.md "Group metadata").
import { AEAD_NONCE_LENGTH, AEAD_TAG_LENGTH, aeadDecrypt, aeadEncrypt } from './aead.js';
import { canonicalBytes, canonicalize } from './canonical-json.js';
import { concatBytes, fromBase64Url, fromUtf8, toBase64Url, utf8, wipe, type Bytes } from './encoding.js';
import { fail, failClosed } from './errors.js';
import { hkdfSha256 } from './kdf.js';
import { pad, unpad } from './padding.js';
import type { EntropySource } from './random.js';
import { isDisappearingMs, MAX_DISAPPEARING_MS, MIN_DISAPPEARING_MS } from './signed-fields.js';

/** What a group's members see about it. Further members are reserved for later versions. */
export interface GroupMetadata {
  /** The group's name as people see it: at most {@link MAX_GROUP_TITLE_LENGTH} characters. */
  readonly title: string;
  /**
   * `'off'`: no member's client sends this group's messages out of the device
   * for a digest (server or own-model digests; an on-device one is reading).
   * Absent: allowed (and not written, so the canonical form of a record
   * without it is unchanged).
   */
  readonly digests?: 'off';
  /**
   * The group's disappearing-message timer in ms ({@link MIN_DISAPPEARING_MS}
   * to {@link MAX_DISAPPEARING_MS}). Absent: off (and not written, so a
   * record without a timer is byte for byte what version 2 wrote).
   */
  readonly disappearing_ms?: number;
}

/** Longest title, in UTF-16 code units. */
export const MAX_GROUP_TITLE_LENGTH = 256;
/** Smallest and largest sealed metadata, in bytes: nonce ‖ one 256-byte padding bucket at least ‖ tag; at most 4 KiB. */
const MIN_SEALED = AEAD_NONCE_LENGTH + 256 + AEAD_TAG_LENGTH;
export const MAX_SEALED_METADATA_BYTES = 4096;

const METADATA_KEY_PURPOSE = 'bil.group-metadata-key.v1';
const METADATA_PURPOSE = 'bil.group-metadata.v1';

function checkMetadata(m: GroupMetadata): void {
  if (typeof m !== 'object' || m === null || typeof m.title !== 'string') throw new TypeError('metadata: expected { title: string }');
  if (m.title.length > MAX_GROUP_TITLE_LENGTH) throw new RangeError(`metadata.title: at most ${MAX_GROUP_TITLE_LENGTH} characters`);
  if (m.digests !== undefined && m.digests !== 'off') throw new TypeError("metadata.digests: expected 'off' or absent");
  if (m.disappearing_ms !== undefined && (!isDisappearingMs(m.disappearing_ms) || m.disappearing_ms === 0)) {
    throw new RangeError(`metadata.disappearing_ms: expected ${MIN_DISAPPEARING_MS} to ${MAX_DISAPPEARING_MS}, or absent (off)`);
  }
  if (Object.keys(m).some((k) => k !== 'title' && k !== 'digests' && k !== 'disappearing_ms')) throw new TypeError('metadata: only title, digests and disappearing_ms are defined');
}

/** The plaintext object: `digests` only when off and `disappearing_ms` only when on, so a record with neither is byte for byte what version 2 wrote. */
const metadataObject = (m: GroupMetadata): Record<string, string | number> => ({
  title: m.title,
  ...(m.digests === 'off' ? { digests: 'off' } : {}),
  ...(m.disappearing_ms !== undefined ? { disappearing_ms: m.disappearing_ms } : {}),
});

async function metadataKey(epochKey: Uint8Array, chatId: string, epoch: number): Promise<Bytes> {
  return hkdfSha256(epochKey, new Uint8Array(), canonicalBytes({ purpose: METADATA_KEY_PURPOSE, chat_id: chatId, epoch }), 32);
}

const associatedData = (chatId: string, epoch: number) => canonicalBytes({ purpose: METADATA_PURPOSE, chat_id: chatId, epoch });

/**
 * Encrypts a record's metadata (AES-256-GCM, key = HKDF-SHA256 of the epoch
 * key with a purpose naming chat and epoch; padded like message plaintext).
 * @internal
 */
export async function sealGroupMetadata(epochKey: Uint8Array, chatId: string, epoch: number, metadata: GroupMetadata, entropy: EntropySource): Promise<string> {
  checkMetadata(metadata);
  const nonce = entropy.randomBytes(AEAD_NONCE_LENGTH);
  const key = await metadataKey(epochKey, chatId, epoch);
  const padded = pad(utf8(canonicalize(metadataObject(metadata))));
  try {
    const ciphertext = await aeadEncrypt('aes-256-gcm', key, nonce, padded, associatedData(chatId, epoch));
    return toBase64Url(concatBytes(nonce, ciphertext));
  } finally {
    wipe(key, padded);
  }
}

/** A record's `metadata` member has the sealed shape (any failure: the uniform error). @internal */
export function checkMetadataShape(sealed: unknown): void {
  if (typeof sealed !== 'string' || sealed.length > Math.ceil((MAX_SEALED_METADATA_BYTES * 4) / 3)) fail();
  const bytes = fromBase64Url(sealed);
  if (bytes.length < MIN_SEALED || bytes.length > MAX_SEALED_METADATA_BYTES) fail();
}

/**
 * Decrypts a record's metadata with that epoch's key. The caller has checked
 * that the key belongs to the record (its commitment). Any failure is the
 * uniform error.
 * @internal
 */
export async function openSealedMetadata(epochKey: Uint8Array, chatId: string, epoch: number, sealed: string): Promise<GroupMetadata> {
  return failClosed(async () => {
    checkMetadataShape(sealed);
    const bytes = fromBase64Url(sealed);
    const key = await metadataKey(epochKey, chatId, epoch);
    let padded: Bytes | undefined;
    try {
      padded = await aeadDecrypt('aes-256-gcm', key, bytes.subarray(0, AEAD_NONCE_LENGTH), bytes.subarray(AEAD_NONCE_LENGTH), associatedData(chatId, epoch));
      const value = JSON.parse(fromUtf8(unpad(padded))) as unknown;
      if (typeof value !== 'object' || value === null || Array.isArray(value)) fail();
      const title = (value as { title?: unknown }).title;
      if (typeof title !== 'string' || title.length > MAX_GROUP_TITLE_LENGTH) fail();
      // Any value but absence means off: a later version's setting is never read as less private.
      const digests = (value as { digests?: unknown }).digests === undefined ? {} : { digests: 'off' as const };
      // A timer that is not a valid one is refused (the record's metadata fails), never read as off.
      const ms = (value as { disappearing_ms?: unknown }).disappearing_ms;
      if (ms !== undefined && (!isDisappearingMs(ms) || ms === 0)) fail();
      return { title, ...digests, ...(ms !== undefined ? { disappearing_ms: ms } : {}) };
    } finally {
      wipe(key, padded);
    }
  });
}
