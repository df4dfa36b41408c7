import { sha256 } from '@noble/hashes/sha2.js';
import { backend } from './backend.js';
import { aeadDecrypt, aeadEncrypt, AEAD_KEY_LENGTH, AEAD_TAG_LENGTH } from './aead.js';
import { abytes, asBytes, concatBytes, equalBytes, fromBase64Url, toBase64Url, utf8, type Bytes } from './encoding.js';
import { CannotDecryptError, fail } from './errors.js';
import { randomBytes } from './random.js';
import type { AttachmentRef, AttachmentThumbnail } from './content.js';

/**
 * Encrypted attachments (docs/protocol.md "Attachments"): a file is encrypted
 * under a fresh 32-byte key with AES-256-GCM in the STREAM construction
 * (Hoang, Reyhanitabar, Rogaway, Vizár, "Online Authenticated-Encryption and
 * its Nonce-Reuse Misuse-Resistance", CRYPTO 2015, §7): plaintext is cut into
 * chunks of `chunk_size` bytes (64 KiB) and chunk i is sealed with the nonce
 *
 *     nonce_prefix (7 bytes) ‖ uint32_be(i) ‖ last (1 byte: 0x01 on the final chunk, else 0x00)
 *
 * so a dropped, repeated, reordered or truncated chunk fails its tag. The
 * ciphertext is `0x01 ‖ nonce_prefix ‖ sealed chunk 0 ‖ … ‖ sealed chunk n-1`;
 * there is always at least one chunk (an empty file is one empty final chunk),
 * and only the final chunk may be shorter than `chunk_size`. `digest` is
 * SHA-256 over the whole ciphertext, carried (with the key) inside the signed,
 * encrypted message, and checked before the last plaintext chunk is released.
 */
export const ATTACHMENT_VERSION = 1;
export const ATTACHMENT_CHUNK_SIZE = 64 * 1024;
export const ATTACHMENT_NONCE_PREFIX_LENGTH = 7;
export const ATTACHMENT_HEADER_LENGTH = 1 + ATTACHMENT_NONCE_PREFIX_LENGTH;
/** Largest chunk a reader accepts (a writer may choose any size from 1 byte up to this). */
export const MAX_ATTACHMENT_CHUNK_SIZE = 1024 * 1024;
const AAD = utf8('bil-attachment-v1');
const MAX_CHUNKS = 2 ** 32;

// The reference a message carries (AttachmentRef, AttachmentThumbnail) is
// part of the message content format (content.ts), which validates it.

/** What encrypting produced, once the whole source was read. */
export interface SealedAttachment {
  key: Bytes;
  digest: Bytes;
  /** Plaintext bytes read. */
  size: number;
  /** Ciphertext bytes written. */
  ciphertextSize: number;
  chunkSize: number;
}

export type ByteSource = AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/**
 * The ciphertext size of a `size`-byte file: header, the plaintext and one tag per chunk.
 * @example
 * attachmentCiphertextSize(0); // 8 + 16 = 24
 */
export function attachmentCiphertextSize(size: number, chunkSize = ATTACHMENT_CHUNK_SIZE): number {
  if (!Number.isSafeInteger(size) || size < 0) throw new TypeError('attachment: size must be a non-negative integer');
  checkChunkSize(chunkSize);
  const chunks = Math.max(1, Math.ceil(size / chunkSize));
  return ATTACHMENT_HEADER_LENGTH + size + chunks * AEAD_TAG_LENGTH;
}

function checkChunkSize(chunkSize: unknown): asserts chunkSize is number {
  if (!Number.isSafeInteger(chunkSize) || (chunkSize as number) < 1 || (chunkSize as number) > MAX_ATTACHMENT_CHUNK_SIZE) {
    throw new TypeError('attachment: chunk size out of range');
  }
}

function chunkNonce(prefix: Uint8Array, index: number, last: boolean): Bytes {
  if (index >= MAX_CHUNKS) throw new RangeError('attachment: too many chunks');
  const nonce = new Uint8Array(12);
  nonce.set(prefix, 0);
  new DataView(nonce.buffer).setUint32(7, index, false);
  nonce[11] = last ? 1 : 0;
  return nonce;
}

/** Collects a byte source into pieces of exactly `size` bytes, holding back the last piece (1..size bytes, or 0 for an empty source). */
async function* pieces(source: ByteSource, size: number): AsyncGenerator<{ piece: Bytes; last: boolean }> {
  let buf: Bytes = new Uint8Array(0);
  for await (const part of source as AsyncIterable<Uint8Array>) {
    if (!(part instanceof Uint8Array)) throw new TypeError('attachment: the source must yield bytes');
    buf = buf.length === 0 ? asBytes(part.slice()) : concatBytes(buf, part);
    // Emit only while more than one piece is held: the piece kept back may be the final one.
    while (buf.length > size) {
      yield { piece: buf.slice(0, size), last: false };
      buf = buf.slice(size);
    }
  }
  yield { piece: buf, last: true };
}

/**
 * Encrypts a file as it streams: yields the ciphertext (header, then one
 * sealed chunk at a time); `sealed()` gives the key, digest and sizes once
 * the output has been read to the end. `key` and `noncePrefix` are for test
 * vectors only: a fresh random key per file is the rule.
 * @example
 * const enc = encryptAttachment(fileChunks);
 * for await (const c of enc) await upload(c);
 * const { key, digest, size } = enc.sealed();
 */
export function encryptAttachment(
  source: ByteSource,
  opts: { key?: Uint8Array; noncePrefix?: Uint8Array; chunkSize?: number } = {},
): AsyncIterable<Bytes> & { sealed(): SealedAttachment } {
  const chunkSize = opts.chunkSize ?? ATTACHMENT_CHUNK_SIZE;
  checkChunkSize(chunkSize);
  const key = asBytes(opts.key ? opts.key.slice() : randomBytes(AEAD_KEY_LENGTH));
  abytes(key, AEAD_KEY_LENGTH, 'attachment key');
  const prefix = opts.noncePrefix ? asBytes(opts.noncePrefix.slice()) : randomBytes(ATTACHMENT_NONCE_PREFIX_LENGTH);
  abytes(prefix, ATTACHMENT_NONCE_PREFIX_LENGTH, 'nonce prefix');
  let result: SealedAttachment | undefined;
  async function* run(): AsyncGenerator<Bytes> {
    const hash = backend().sha256Stream?.() ?? sha256.create();
    const header = concatBytes(Uint8Array.of(ATTACHMENT_VERSION), prefix);
    hash.update(header);
    yield header;
    let index = 0;
    let size = 0;
    let out = header.length;
    for await (const { piece, last } of pieces(source, chunkSize)) {
      const sealed = await aeadEncrypt('aes-256-gcm', key, chunkNonce(prefix, index, last), piece, AAD);
      hash.update(sealed);
      size += piece.length;
      out += sealed.length;
      index++;
      yield sealed;
    }
    result = { key, digest: asBytes(hash.digest()), size, ciphertextSize: out, chunkSize };
  }
  return {
    [Symbol.asyncIterator]: run,
    sealed() {
      if (!result) throw new Error('attachment: the ciphertext has not been read to the end');
      return result;
    },
  };
}

/**
 * Decrypts a downloaded ciphertext as it streams, checking every chunk's tag,
 * the chunk order and the end of the stream; the last plaintext chunk is
 * released only after the SHA-256 of the whole ciphertext equals
 * `ref.digest` and the plaintext size equals `ref.size`. Every failure is
 * {@link CannotDecryptError}.
 * @example
 * for await (const plain of decryptAttachment(ref, download(ref.blob_id))) out.write(plain);
 */
export async function* decryptAttachment(ref: Pick<AttachmentRef, 'key' | 'digest' | 'size' | 'chunk_size'>, ciphertext: ByteSource): AsyncGenerator<Bytes> {
  let key: Bytes;
  let digest: Bytes;
  try {
    checkChunkSize(ref.chunk_size);
    if (!Number.isSafeInteger(ref.size) || ref.size < 0) fail();
    key = fromBase64Url(ref.key, AEAD_KEY_LENGTH);
    digest = fromBase64Url(ref.digest, 32);
  } catch {
    throw new CannotDecryptError();
  }
  const hash = backend().sha256Stream?.() ?? sha256.create();
  const sealedSize = ref.chunk_size + AEAD_TAG_LENGTH;
  let prefix: Bytes | undefined;
  let index = 0;
  let size = 0;
  const open = async (piece: Bytes, last: boolean): Promise<Bytes> => {
    const plain = await aeadDecrypt('aes-256-gcm', key, chunkNonce(prefix!, index, last), piece, AAD);
    // Only the final chunk may be short (STREAM: a short non-final chunk is a truncation).
    if (!last && plain.length !== ref.chunk_size) fail();
    index++;
    size += plain.length;
    if (size > ref.size) fail();
    return plain;
  };
  let header = new Uint8Array(0) as Bytes;
  async function* body(): AsyncGenerator<Uint8Array> {
    for await (const part of ciphertext as AsyncIterable<Uint8Array>) {
      if (!(part instanceof Uint8Array)) fail();
      hash.update(part);
      if (prefix) {
        yield part;
        continue;
      }
      header = concatBytes(header, part);
      if (header.length < ATTACHMENT_HEADER_LENGTH) continue;
      if (header[0] !== ATTACHMENT_VERSION) fail();
      prefix = header.slice(1, ATTACHMENT_HEADER_LENGTH);
      const rest = header.slice(ATTACHMENT_HEADER_LENGTH);
      if (rest.length > 0) yield rest;
    }
    if (!prefix) fail();
  }
  try {
    for await (const { piece, last } of pieces(body(), sealedSize)) {
      const plain = await open(piece, last);
      if (last) {
        if (size !== ref.size || !equalBytes(asBytes(hash.digest()), digest)) fail();
      }
      yield plain;
    }
  } catch (err) {
    if (err instanceof CannotDecryptError) throw err;
    throw new CannotDecryptError();
  }
}

/**
 * The reference a message carries for an uploaded attachment.
 * @example
 * const ref = attachmentRef(blobId, enc.sealed(), { name: 'a.pdf', mime: 'application/pdf' });
 */
export function attachmentRef(
  blobId: string,
  sealed: SealedAttachment,
  meta: { name: string; mime: string; thumbnail?: AttachmentThumbnail },
): AttachmentRef {
  return {
    blob_id: blobId,
    key: toBase64Url(sealed.key),
    digest: toBase64Url(sealed.digest),
    size: sealed.size,
    chunk_size: sealed.chunkSize,
    mime: meta.mime,
    name: meta.name,
    ...(meta.thumbnail ? { thumbnail: meta.thumbnail } : {}),
  };
}
