// The object-storage blob backend (S3 or any S3-compatible server, through
// @aws-sdk/client-s3): each append is one object, `<prefix><blob id>/<offset>`
// with the offset zero-padded so the keys list in byte order. A blob's state
// (size, bytes received, who may read it) stays in PostgreSQL as for the
// default backend; the bucket holds ciphertext only.
//
// An object is written before the transaction that counts its bytes commits.
// If that transaction fails, the object is left at the offset the blob had
// received, and the next append at that offset (the only one the store
// allows) overwrites it; an upload never completed is collected with its
// objects. Deletion happens as the caller asks, outside its transaction: a
// blob whose bytes are asked to go is unreferenced, so a rollback after it
// leaves a row the collector takes again.
//
// Clients may also move the bytes themselves, past the gateway: a presigned
// PUT for the object at the blob's current offset (then `commitPresigned`
// checks the object's length and counts it), and presigned GETs of the
// objects in order (docs/chat.md "Blobs").
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Sql } from '@bil/runtime';
import type { BlobBackend, DirectTransfer } from './backend.js';

/** Offsets are written with this many digits, enough for any blob below 10^13 bytes. */
const OFFSET_DIGITS = 13;
/** DeleteObjects takes at most this many keys per request. */
const DELETE_BATCH = 1000;

export interface S3BackendSettings {
  bucket: string;
  /** Key prefix for every blob object, e.g. `blobs/`. */
  prefix: string;
  /** How long a presigned URL stays valid, in seconds. */
  presignSeconds: number;
}

interface StoredPart {
  key: string;
  offset: number;
  size: number;
}

export class S3BlobBackend implements BlobBackend, DirectTransfer {
  constructor(
    private readonly s3: S3Client,
    private readonly settings: S3BackendSettings,
  ) {}

  get presignSeconds(): number {
    return this.settings.presignSeconds;
  }

  async putChunk(_tx: Sql, blobId: string, offset: number, data: Uint8Array): Promise<void> {
    await this.s3.send(
      new PutObjectCommand({
        Bucket: this.settings.bucket,
        Key: this.key(blobId, offset),
        Body: data,
        ContentLength: data.byteLength,
        ContentType: 'application/octet-stream',
      }),
    );
  }

  async *chunks(blobId: string, offset: number, maxBytes: number): AsyncGenerator<Uint8Array> {
    let at = offset;
    const end = offset + maxBytes;
    for (const part of await this.parts(blobId)) {
      if (at >= end) return;
      if (part.offset + part.size <= at) continue;
      if (part.offset > at) return; // a hole: nothing stored there
      const from = at - part.offset;
      const to = Math.min(part.size, end - part.offset); // exclusive
      const got = await this.s3.send(
        new GetObjectCommand({ Bucket: this.settings.bucket, Key: part.key, Range: `bytes=${from}-${to - 1}` }),
      );
      if (!got.Body) return;
      for await (const piece of got.Body as AsyncIterable<Uint8Array>) {
        yield piece;
        at += piece.byteLength;
      }
      if (at !== part.offset + to) return; // the object was shorter than listed
    }
  }

  async delete(_tx: Sql, blobIds: readonly string[]): Promise<void> {
    const keys: string[] = [];
    for (const blobId of blobIds) for (const part of await this.parts(blobId)) keys.push(part.key);
    for (let i = 0; i < keys.length; i += DELETE_BATCH) {
      await this.s3.send(
        new DeleteObjectsCommand({
          Bucket: this.settings.bucket,
          Delete: { Objects: keys.slice(i, i + DELETE_BATCH).map((Key) => ({ Key })), Quiet: true },
        }),
      );
    }
  }

  async stat(blobId: string): Promise<{ bytes: number }> {
    let bytes = 0;
    let at = 0;
    for (const part of await this.parts(blobId)) {
      if (part.offset !== at) break; // count the contiguous bytes only
      bytes += part.size;
      at += part.size;
    }
    return { bytes };
  }

  /** A URL the client PUTs exactly `length` bytes to, for the object at `offset`. */
  async presignPut(blobId: string, offset: number, length: number): Promise<string> {
    return getSignedUrl(
      this.s3,
      new PutObjectCommand({ Bucket: this.settings.bucket, Key: this.key(blobId, offset), ContentLength: length }),
      { expiresIn: this.settings.presignSeconds },
    );
  }

  /** The length of the object a client put at `offset` (0 when there is none). */
  async storedLength(blobId: string, offset: number): Promise<number> {
    try {
      const head = await this.s3.send(new HeadObjectCommand({ Bucket: this.settings.bucket, Key: this.key(blobId, offset) }));
      return head.ContentLength ?? 0;
    } catch (err) {
      if ((err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return 0;
      throw err;
    }
  }

  /** Presigned GETs for the blob's objects in order, with the byte range each holds. */
  async presignGets(blobId: string): Promise<Array<{ offset: number; length: number; url: string }>> {
    const out: Array<{ offset: number; length: number; url: string }> = [];
    let at = 0;
    for (const part of await this.parts(blobId)) {
      if (part.offset !== at) break;
      const url = await getSignedUrl(this.s3, new GetObjectCommand({ Bucket: this.settings.bucket, Key: part.key }), {
        expiresIn: this.settings.presignSeconds,
      });
      out.push({ offset: part.offset, length: part.size, url });
      at += part.size;
    }
    return out;
  }

  private key(blobId: string, offset: number): string {
    return `${this.settings.prefix}${blobId}/${String(offset).padStart(OFFSET_DIGITS, '0')}`;
  }

  /** The blob's objects, by offset. */
  private async parts(blobId: string): Promise<StoredPart[]> {
    const prefix = `${this.settings.prefix}${blobId}/`;
    const out: StoredPart[] = [];
    let token: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.settings.bucket, Prefix: prefix, ContinuationToken: token }));
      for (const obj of page.Contents ?? []) {
        const tail = obj.Key?.slice(prefix.length) ?? '';
        if (!/^\d+$/.test(tail)) continue;
        out.push({ key: obj.Key!, offset: Number(tail), size: obj.Size ?? 0 });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out.sort((a, b) => a.offset - b.offset);
  }
}
