// client.attachments (docs/sdk.md "Attachments"): files encrypted on this
// device (@bil/crypto attachment.ts: a fresh key per file, 64 KiB AES-256-GCM
// chunks, SHA-256 digest of the ciphertext), uploaded as they are read and
// downloaded as they are decrypted, so a 100 MB file is never held in memory.
// The upload goes in segments of SEGMENT_BYTES; a segment that fails (no
// answer, an outage, a cut connection) resumes from the offset the server
// says it has received, so only the unacknowledged segment is ever buffered.
// (Encrypting the next segment while one is on the wire was tried: about 20%
// faster uploads, but 4-8 MiB more held, past the memory bound its test
// keeps; docs/performance.md "Attachments".)
import {
  attachmentCiphertextSize,
  attachmentRef,
  decryptAttachment,
  encryptAttachment,
  type AttachmentRef,
  type AttachmentThumbnail,
} from '@bil/crypto';
import type { ClientCore } from './client-core.js';
import { BilApiError, BilNetworkError } from './errors.js';
import type { MessagesApi } from './chat/types.js';
import type { SendResult } from './chat/types.js';
import { downloadDirect, putDirect } from './attachments-direct.js';

/** Largest attachment (plaintext bytes), as @bil/proto/limits MAX_ATTACHMENT_BYTES. */
export const MAX_ATTACHMENT_SIZE = 100 * 1024 * 1024;
/** Ciphertext bytes per upload request (the most an upload holds in memory). */
export const SEGMENT_BYTES = 4 * 1024 * 1024;
const ATTEMPTS = 6;

/** A file path (Node, `@bil/sdk/node`), a Blob or File (browsers), or bytes as they come (give `size`). */
export type AttachmentSource = string | Blob | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

export interface UploadOptions {
  name: string;
  mime: string;
  thumbnail?: AttachmentThumbnail;
  /** The plaintext size: required for an iterable source, checked against what it yields. */
  size?: number;
}

export interface AttachmentsApi {
  /** Encrypts and uploads a file for a chat of yours; the reference goes into the message (send). */
  upload(chatId: string, source: AttachmentSource, options: UploadOptions): Promise<AttachmentRef>;
  /** Downloads and decrypts an attachment; the digest is checked before the last bytes are released (throws CannotDecryptError on any tampering). */
  download(ref: AttachmentRef): AsyncIterable<Uint8Array>;
  /** Sends a text message carrying uploaded attachments. */
  send(chatId: string, refs: readonly AttachmentRef[], text?: string, options?: { messageId?: string }): Promise<SendResult>;
}

interface SizedSource {
  size: number;
  chunks(): AsyncIterable<Uint8Array>;
}

type FileOpener = (path: string) => Promise<SizedSource>;
let fileOpener: FileOpener | undefined;

/** Lets `upload` take file paths (`@bil/sdk/node` installs Node's file system). */
export function setAttachmentFileOpener(open: FileOpener): void {
  fileOpener = open;
}

async function* streamChunks(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

async function sized(source: AttachmentSource, size: number | undefined): Promise<SizedSource> {
  if (typeof source === 'string') {
    if (!fileOpener) throw new TypeError('source: a file path needs @bil/sdk/node; pass a Blob or an iterable of bytes with `size`');
    return fileOpener(source);
  }
  if (typeof Blob !== 'undefined' && source instanceof Blob) return { size: source.size, chunks: () => streamChunks(source.stream()) };
  if (typeof source === 'object' && source !== null && (Symbol.asyncIterator in source || Symbol.iterator in source)) {
    if (size === undefined || !Number.isSafeInteger(size) || size < 0) throw new TypeError('size: required for an iterable source (the plaintext bytes it yields)');
    return { size, chunks: () => source as AsyncIterable<Uint8Array> };
  }
  throw new TypeError('source: expected a file path, a Blob or an iterable of bytes');
}

const transient = (err: unknown) =>
  err instanceof BilNetworkError ||
  (err instanceof BilApiError && (err.status >= 500 || err.code === 'offset_mismatch' || err.code === 'upload_incomplete' || err.code.startsWith('storage_')));

export class Attachments implements AttachmentsApi {
  /** Whether the server offers presigned transfers (object storage), once a blob's status said so. */
  #direct: boolean | undefined;

  constructor(
    private readonly core: ClientCore,
    private readonly messages: Pick<MessagesApi, 'sendContent'>,
    private readonly sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
  ) {}

  async upload(chatId: string, source: AttachmentSource, options: UploadOptions): Promise<AttachmentRef> {
    if (typeof options?.name !== 'string' || typeof options.mime !== 'string') throw new TypeError('options: name and mime are required');
    // Nothing is uploaded for a chat this account can't post to (404 chat_not_found).
    await this.core.call('GET', `/v1/chats/${encodeURIComponent(chatId)}`);
    const src = await sized(source, options.size);
    if (src.size > MAX_ATTACHMENT_SIZE) throw new RangeError(`attachments are at most ${MAX_ATTACHMENT_SIZE} bytes`);
    const total = attachmentCiphertextSize(src.size);
    const created = await this.core.call<{ blob_id: string; direct_transfer?: boolean }>('POST', '/v1/blobs', { size: total });
    const blobId = created.blob_id;
    this.#direct = created.direct_transfer === true;
    const enc = encryptAttachment(src.chunks());
    // The ciphertext is written straight into a 4 MiB segment, sent when full.
    let offset = 0;
    const put = async (segment: Uint8Array) => {
      await this.putSegment(blobId, offset, segment);
      offset += segment.length;
    };
    const fresh = () => new Uint8Array(total - offset > 0 ? Math.min(SEGMENT_BYTES, total - offset) : SEGMENT_BYTES);
    let segment = fresh();
    let filled = 0;
    for await (const part of enc) {
      for (let from = 0; from < part.length; ) {
        const n = Math.min(part.length - from, segment.length - filled);
        segment.set(part.subarray(from, from + n), filled);
        filled += n;
        from += n;
        if (filled === segment.length) {
          await put(segment);
          segment = fresh();
          filled = 0;
        }
      }
    }
    if (filled > 0) await put(segment.subarray(0, filled));
    const sealed = enc.sealed();
    if (sealed.size !== src.size) throw new RangeError(`source: yielded ${sealed.size} bytes, not the ${src.size} declared`);
    return attachmentRef(blobId, sealed, { name: options.name, mime: options.mime, ...(options.thumbnail ? { thumbnail: options.thumbnail } : {}) });
  }

  /** Uploads one segment starting at `start`, resuming from the server's offset after a failure. */
  private async putSegment(blobId: string, start: number, segment: Uint8Array): Promise<void> {
    let from = start;
    for (let attempt = 1; ; attempt++) {
      try {
        if (this.#direct) {
          await putDirect(this.core, blobId, from, segment.subarray(from - start));
          return;
        }
        const token = await this.core.session.accessToken();
        await this.core.transport.stream('PUT', `/v1/blobs/${encodeURIComponent(blobId)}/content?offset=${from}`, {
          body: segment.subarray(from - start),
          accessToken: token,
        });
        return;
      } catch (err) {
        if (!transient(err) || attempt >= ATTEMPTS) throw err;
        await this.sleep(Math.min(2000, 100 * 2 ** attempt));
        const status = await this.core.call<{ received: number }>('GET', `/v1/blobs/${encodeURIComponent(blobId)}`);
        if (status.received < start || status.received > start + segment.length) throw err;
        from = status.received;
        if (from === start + segment.length) return;
      }
    }
  }

  async *download(ref: AttachmentRef): AsyncGenerator<Uint8Array> {
    if (this.#direct !== false) {
      const fromBucket = await downloadDirect(this.core, ref.blob_id);
      this.#direct = fromBucket !== undefined;
      if (fromBucket) {
        yield* decryptAttachment(ref, fromBucket);
        return;
      }
    }
    const token = await this.core.session.accessToken();
    const res = await this.core.transport.stream('GET', `/v1/blobs/${encodeURIComponent(ref.blob_id)}/content`, { accessToken: token, timeoutMs: 0 });
    if (!res.body) throw new BilApiError({ status: res.status, code: 'invalid_response', message: 'the server sent no body' });
    yield* decryptAttachment(ref, streamChunks(res.body));
  }

  send(chatId: string, refs: readonly AttachmentRef[], text = '', options?: { messageId?: string }): Promise<SendResult> {
    if (!Array.isArray(refs) || refs.length === 0) throw new TypeError('refs: at least one attachment');
    return this.messages.sendContent(chatId, { kind: 'text', text, attachments: [...refs] }, options);
  }
}
