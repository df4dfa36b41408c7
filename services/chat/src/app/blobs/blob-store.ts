// The blob use cases behind BlobService (docs/chat.md "Blobs"): create an
// upload within the size limit and the owner's quota, append at the offset
// received so far (resumable), read a completed blob's state and bytes. Who
// may read: the owner, and the current members of an active chat whose
// message (at a seq after they joined) references the blob; anyone else gets
// `blob_not_found`, as for a blob that does not exist.
import { randomUUID } from 'node:crypto';
import { AppError, failedPrecondition, invalidArgument, notFound, systemClock, type Clock, type Database, type Sql } from '@bil/runtime';
import { MAX_BLOB_BYTES, MAX_BLOB_CHUNK_BYTES, MAX_DIRECT_PART_BYTES } from '@bil/proto/limits';
import { validateUuid } from '../../domain/validation.js';
import type { Actor } from '../context.js';
import { requireUsableDevice } from '../repository.js';
import type { BlobBackend, DirectTransfer } from './backend.js';

export interface BlobSettings {
  /** Most bytes of blobs one user may hold (uploads in progress included). */
  quotaBytes: number;
}

export interface BlobView {
  blobId: string;
  size: number;
  received: number;
  complete: boolean;
  createdAt: string;
}

type BlobRow = { blob_id: string; size: string; received: string; status: string; created_at: Date | string };

const blobNotFound = () => notFound('blob_not_found', 'no such blob');
const view = (r: BlobRow): BlobView => ({
  blobId: r.blob_id,
  size: Number(r.size),
  received: Number(r.received),
  complete: r.status === 'complete',
  createdAt: new Date(r.created_at).toISOString(),
});

/** A blob's row if `userId` may read it: its owner, or a current member of an active chat whose message references it. */
export const READABLE_BLOB_SQL = `SELECT b.blob_id, b.size, b.received, b.status, b.created_at FROM chat.blobs b
  WHERE b.blob_id = ? AND (b.owner_user_id = ? OR EXISTS (
    SELECT 1 FROM chat.message_blobs mb
    JOIN chat.chats c ON c.chat_id = mb.chat_id AND c.status = 'active'
    JOIN chat.chat_members m ON m.chat_id = mb.chat_id AND m.user_id = ? AND m.left_seq IS NULL AND m.joined_seq < mb.seq
    WHERE mb.blob_id = b.blob_id))`;

/** A whole number in [min, max] (int64 fields arrive as decimal text); `tooLarge` answers a number past max. */
function wholeNumber(raw: unknown, field: string, min: number, max: number, tooLarge: () => Error): number {
  const n = typeof raw === 'string' && /^\d{1,16}$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min) throw invalidArgument('invalid_argument', `${field} must be a whole number of at least ${min}`, { field });
  if (n > max) throw tooLarge();
  return n;
}

const overMax = (field: string, max: number) => () => invalidArgument('invalid_argument', `${field} must be at most ${max}`, { field });

/** `length` bytes at `offset` continue the upload: the offset is what arrived so far and the bytes stay within the declared size. */
function checkAppend(row: BlobRow, offset: number, length: number): void {
  const received = Number(row.received);
  if (offset !== received) throw failedPrecondition('offset_mismatch', `the upload continues at offset ${received}`, { received });
  if (received + length > Number(row.size)) {
    throw invalidArgument('blob_too_large', `the data goes past the blob's declared size of ${row.size} bytes`, { field: 'data', max_bytes: Number(row.size) });
  }
}

export class BlobStore {
  constructor(
    private readonly db: Database,
    readonly backend: BlobBackend,
    private readonly settings: BlobSettings,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Starts an upload of `size` ciphertext bytes; `quota_exceeded` past the owner's quota. */
  async create(actor: Actor, rawSize: unknown): Promise<BlobView> {
    const size = wholeNumber(rawSize, 'size', 1, MAX_BLOB_BYTES, () =>
      invalidArgument('blob_too_large', `size must be at most ${MAX_BLOB_BYTES} bytes`, { field: 'size', max_bytes: MAX_BLOB_BYTES }),
    );
    return this.db.tx(async (tx) => {
      await requireUsableDevice(tx, actor);
      // One quota check at a time per user, so two concurrent uploads can't both fit in the last gigabyte.
      await tx.query(`SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`, [`blob-quota:${actor.userId}`]);
      const [used] = await tx.query<{ bytes: string }>(`SELECT COALESCE(sum(size), 0) AS bytes FROM chat.blobs WHERE owner_user_id = ?`, [actor.userId]);
      const usedBytes = Number(used?.bytes ?? 0);
      if (usedBytes + size > this.settings.quotaBytes) {
        throw failedPrecondition('quota_exceeded', `this upload would take your attachments past your quota of ${this.settings.quotaBytes} bytes`, {
          quota_bytes: this.settings.quotaBytes,
          used_bytes: usedBytes,
        });
      }
      const [row] = await tx.query<BlobRow>(
        `INSERT INTO chat.blobs (blob_id, owner_user_id, owner_device_id, size, received, status, created_at)
         VALUES (?, ?, ?, ?, 0, 'uploading', ?) RETURNING blob_id, size, received, status, created_at`,
        [randomUUID(), actor.userId, actor.deviceId, size, this.clock.now().toISOString()],
      );
      return view(row!);
    });
  }

  /** Appends `data` at `offset` (= the bytes received so far); the last bytes complete the blob. */
  async append(actor: Actor, input: { blobId: unknown; offset: unknown; data: unknown }): Promise<BlobView> {
    const blobId = validateUuid(input.blobId, 'blob_id');
    const offset = wholeNumber(input.offset, 'offset', 0, MAX_BLOB_BYTES, overMax('offset', MAX_BLOB_BYTES));
    const data = input.data;
    if (!(data instanceof Uint8Array) || data.length === 0 || data.length > MAX_BLOB_CHUNK_BYTES) {
      throw invalidArgument('invalid_length', `data must be 1 to ${MAX_BLOB_CHUNK_BYTES} bytes`, { field: 'data' });
    }
    return this.appendAt(actor, blobId, offset, data.length, (tx) => this.backend.putChunk(tx, blobId, offset, data));
  }

  /** A presigned URL the owner PUTs the `length` bytes at `offset` to (object storage only). */
  async presignUpload(actor: Actor, input: { blobId: unknown; offset: unknown; length: unknown }): Promise<{ url: string; expiresAt: string }> {
    const direct = this.requireDirect();
    const blobId = validateUuid(input.blobId, 'blob_id');
    const offset = wholeNumber(input.offset, 'offset', 0, MAX_BLOB_BYTES, overMax('offset', MAX_BLOB_BYTES));
    const length = wholeNumber(input.length, 'length', 1, MAX_DIRECT_PART_BYTES, overMax('length', MAX_DIRECT_PART_BYTES));
    await requireUsableDevice(this.db, actor);
    const [row] = await this.db.query<BlobRow>(`SELECT blob_id, size, received, status, created_at FROM chat.blobs WHERE blob_id = ? AND owner_user_id = ?`, [
      blobId,
      actor.userId,
    ]);
    if (!row) throw blobNotFound();
    checkAppend(row, offset, length);
    const url = await direct.presignPut(blobId, offset, length);
    return { url, expiresAt: this.expiry(direct) };
  }

  /** Counts the `length` bytes the owner PUT at `offset`, once object storage holds exactly that many. */
  async commitUpload(actor: Actor, input: { blobId: unknown; offset: unknown; length: unknown }): Promise<BlobView> {
    const direct = this.requireDirect();
    const blobId = validateUuid(input.blobId, 'blob_id');
    const offset = wholeNumber(input.offset, 'offset', 0, MAX_BLOB_BYTES, overMax('offset', MAX_BLOB_BYTES));
    const length = wholeNumber(input.length, 'length', 1, MAX_DIRECT_PART_BYTES, overMax('length', MAX_DIRECT_PART_BYTES));
    return this.appendAt(actor, blobId, offset, length, async () => {
      const stored = await direct.storedLength(blobId, offset);
      if (stored !== length) {
        throw failedPrecondition('upload_incomplete', `object storage holds ${stored} of the ${length} bytes put at offset ${offset}`, { stored_bytes: stored });
      }
    });
  }

  /** Presigned URLs for a completed blob's bytes, in order, for its owner or a reader (object storage only). */
  async presignDownload(actor: Actor, rawBlobId: unknown): Promise<{ parts: Array<{ offset: number; length: number; url: string }>; expiresAt: string }> {
    const direct = this.requireDirect();
    const blobId = validateUuid(rawBlobId, 'blob_id');
    const blob = view(await this.readable(this.db, actor, blobId));
    if (!blob.complete) throw failedPrecondition('blob_incomplete', 'the blob has not been uploaded completely');
    const parts = await direct.presignGets(blobId);
    const stored = parts.reduce((n, p) => n + p.length, 0);
    if (stored !== blob.size) throw new AppError('internal', 'internal', `object storage holds ${stored} of the blob's ${blob.size} bytes`);
    return { parts, expiresAt: this.expiry(direct) };
  }

  /** The backend's presigned transfers, when it has them (object storage). */
  get direct(): DirectTransfer | undefined {
    const b = this.backend as Partial<DirectTransfer>;
    return typeof b.presignPut === 'function' ? (this.backend as unknown as DirectTransfer) : undefined;
  }

  private requireDirect(): DirectTransfer {
    const direct = this.direct;
    if (!direct) throw failedPrecondition('direct_transfer_unavailable', 'this server stores attachments in its database: upload and download through the API');
    return direct;
  }

  private expiry(direct: DirectTransfer): string {
    return new Date(this.clock.now().getTime() + direct.presignSeconds * 1000).toISOString();
  }

  /** Under the blob row's lock: checks `offset` and `length`, lets `store` put the bytes, and counts them. */
  private appendAt(actor: Actor, blobId: string, offset: number, length: number, store: (tx: Sql) => Promise<void>): Promise<BlobView> {
    return this.db.tx(async (tx) => {
      await requireUsableDevice(tx, actor);
      const [row] = await tx.query<BlobRow>(
        `SELECT blob_id, size, received, status, created_at FROM chat.blobs WHERE blob_id = ? AND owner_user_id = ? FOR UPDATE`,
        [blobId, actor.userId],
      );
      if (!row) throw blobNotFound();
      checkAppend(row, offset, length);
      await store(tx);
      const [after] = await tx.query<BlobRow>(
        `UPDATE chat.blobs SET received = received + ?,
           status = CASE WHEN received + ? = size THEN 'complete' ELSE 'uploading' END,
           completed_at = CASE WHEN received + ? = size THEN ?::timestamptz ELSE NULL END
         WHERE blob_id = ? RETURNING blob_id, size, received, status, created_at`,
        [length, length, length, this.clock.now().toISOString(), blobId],
      );
      return view(after!);
    });
  }

  /** The blob's state, for its owner or a reader. */
  async status(actor: Actor, rawBlobId: unknown): Promise<BlobView> {
    return view(await this.readable(this.db, actor, validateUuid(rawBlobId, 'blob_id')));
  }

  /** Up to `maxBytes` of a completed blob from `offset`. */
  async read(actor: Actor, input: { blobId: unknown; offset: unknown; maxBytes: unknown }): Promise<{ data: Buffer; size: number }> {
    const blobId = validateUuid(input.blobId, 'blob_id');
    const offset = wholeNumber(input.offset, 'offset', 0, MAX_BLOB_BYTES, overMax('offset', MAX_BLOB_BYTES));
    const maxBytes = wholeNumber(input.maxBytes, 'max_bytes', 1, MAX_BLOB_CHUNK_BYTES, overMax('max_bytes', MAX_BLOB_CHUNK_BYTES));
    const blob = view(await this.readable(this.db, actor, blobId));
    if (!blob.complete) throw failedPrecondition('blob_incomplete', 'the blob has not been uploaded completely');
    if (offset >= blob.size) throw invalidArgument('invalid_offset', `offset must be below the blob's size of ${blob.size} bytes`, { field: 'offset' });
    const parts: Uint8Array[] = [];
    for await (const part of this.backend.chunks(blobId, offset, Math.min(maxBytes, blob.size - offset))) parts.push(part);
    return { data: Buffer.concat(parts), size: blob.size };
  }

  private async readable(q: Sql, actor: Actor, blobId: string): Promise<BlobRow> {
    await requireUsableDevice(q, actor);
    const [row] = await q.query<BlobRow>(READABLE_BLOB_SQL, [blobId, actor.userId, actor.userId]);
    if (!row) throw blobNotFound();
    return row;
  }
}
