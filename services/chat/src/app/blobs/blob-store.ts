// The blob use cases behind BlobService (docs/chat.md "Blobs"): create an
// upload within the size limit and the owner's quota, append at the offset
// received so far (resumable), read a completed blob's state and bytes. Who
// may read: the owner, and the current members of an active chat whose
// message (at a seq after they joined) references the blob; anyone else gets
// `blob_not_found`, as for a blob that does not exist.
import { randomUUID } from 'node:crypto';
import { failedPrecondition, invalidArgument, notFound, systemClock, type Clock, type Database, type Sql } from '@bil/runtime';
import { MAX_BLOB_BYTES, MAX_BLOB_CHUNK_BYTES } from '@bil/proto/limits';
import { validateUuid } from '../../domain/validation.js';
import type { Actor } from '../context.js';
import { requireUsableDevice } from '../repository.js';
import type { BlobBackend } from './backend.js';

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
    return this.db.tx(async (tx) => {
      await requireUsableDevice(tx, actor);
      const [row] = await tx.query<BlobRow>(
        `SELECT blob_id, size, received, status, created_at FROM chat.blobs WHERE blob_id = ? AND owner_user_id = ? FOR UPDATE`,
        [blobId, actor.userId],
      );
      if (!row) throw blobNotFound();
      const received = Number(row.received);
      if (offset !== received) {
        throw failedPrecondition('offset_mismatch', `the upload continues at offset ${received}`, { received });
      }
      if (received + data.length > Number(row.size)) {
        throw invalidArgument('blob_too_large', `the data goes past the blob's declared size of ${row.size} bytes`, { field: 'data', max_bytes: Number(row.size) });
      }
      await this.backend.putChunk(tx, blobId, offset, data);
      const [after] = await tx.query<BlobRow>(
        `UPDATE chat.blobs SET received = received + ?,
           status = CASE WHEN received + ? = size THEN 'complete' ELSE 'uploading' END,
           completed_at = CASE WHEN received + ? = size THEN ?::timestamptz ELSE NULL END
         WHERE blob_id = ? RETURNING blob_id, size, received, status, created_at`,
        [data.length, data.length, data.length, this.clock.now().toISOString(), blobId],
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
