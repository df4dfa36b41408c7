// Where blob bytes live. The blobs' state (owner, size, bytes received) and
// who may read them are PostgreSQL rows of the chat schema whatever the
// backend; a backend stores and returns the ciphertext only. PostgreSQL
// (postgres-backend.ts) is the default, so `npm start` needs nothing more; an
// object-storage backend implements the same four operations.
import type { Sql } from '@bil/runtime';

export interface BlobBackend {
  /**
   * Stores `data` at `offset` of the blob. The caller holds the blob row's
   * lock and has checked `offset` against the bytes received; `tx` is that
   * transaction (a backend that can write in it, as PostgreSQL does, makes
   * the bytes and the row's `received` commit together).
   */
  putChunk(tx: Sql, blobId: string, offset: number, data: Uint8Array): Promise<void>;
  /** The stored bytes from `offset`, in order, at most `maxBytes` in all. */
  chunks(blobId: string, offset: number, maxBytes: number): AsyncIterable<Uint8Array>;
  /** Deletes the bytes of these blobs (nothing for an unknown id). */
  delete(tx: Sql, blobIds: readonly string[]): Promise<void>;
  /** How many bytes are stored for the blob. */
  stat(blobId: string): Promise<{ bytes: number }>;
}

/**
 * What an object store adds: clients move the bytes to and from it directly
 * with presigned URLs, past the gateway and this service; the blob's row
 * still counts what arrived (after checking the object) and says who may read.
 */
export interface DirectTransfer {
  /** A URL to PUT exactly `length` bytes to, stored at `offset` of the blob. */
  presignPut(blobId: string, offset: number, length: number): Promise<string>;
  /** How many bytes a client stored at `offset` (0 when none). */
  storedLength(blobId: string, offset: number): Promise<number>;
  /** URLs to GET the blob's stored bytes, in order, with the range each holds. */
  presignGets(blobId: string): Promise<Array<{ offset: number; length: number; url: string }>>;
  /** How long the URLs stay valid, in seconds. */
  readonly presignSeconds: number;
}
