// The default blob backend: ciphertext in chat.blob_chunks, one row per
// append (up to MAX_BLOB_CHUNK_BYTES), keyed by (blob_id, start_offset).
import type { Sql } from '@bil/runtime';
import type { BlobBackend } from './backend.js';

/** Rows read per round trip while streaming a blob out (1 MiB each at most). */
const ROWS_PER_READ = 4;

export class PostgresBlobBackend implements BlobBackend {
  constructor(private readonly db: Sql) {}

  async putChunk(tx: Sql, blobId: string, offset: number, data: Uint8Array): Promise<void> {
    await tx.query(`INSERT INTO chat.blob_chunks (blob_id, start_offset, data) VALUES (?, ?, ?)`, [blobId, offset, Buffer.from(data.buffer, data.byteOffset, data.byteLength)]);
  }

  async *chunks(blobId: string, offset: number, maxBytes: number): AsyncGenerator<Uint8Array> {
    let at = offset;
    const end = offset + maxBytes;
    // The row holding `offset`: the last one starting at or before it.
    let from = await this.rowStart(blobId, offset);
    while (at < end) {
      const rows = await this.db.query<{ start_offset: string; data: Buffer }>(
        `SELECT start_offset, data FROM chat.blob_chunks WHERE blob_id = ? AND start_offset >= ? AND start_offset < ? ORDER BY start_offset LIMIT ${ROWS_PER_READ}`,
        [blobId, from, end],
      );
      if (rows.length === 0) return;
      for (const row of rows) {
        const start = Number(row.start_offset);
        const data = row.data;
        const lo = Math.max(0, at - start);
        const hi = Math.min(data.length, end - start);
        if (start + lo !== at) return; // a hole: nothing stored there
        if (hi > lo) {
          yield data.subarray(lo, hi);
          at = start + hi;
        }
        from = start + data.length;
        if (at >= end) return;
      }
    }
  }

  async delete(tx: Sql, blobIds: readonly string[]): Promise<void> {
    if (blobIds.length === 0) return;
    await tx.query(`DELETE FROM chat.blob_chunks WHERE blob_id = ANY(?::uuid[])`, [`{${blobIds.join(',')}}`]);
  }

  async stat(blobId: string): Promise<{ bytes: number }> {
    const [row] = await this.db.query<{ bytes: string | null }>(`SELECT sum(length(data)) AS bytes FROM chat.blob_chunks WHERE blob_id = ?`, [blobId]);
    return { bytes: Number(row?.bytes ?? 0) };
  }

  private async rowStart(blobId: string, offset: number): Promise<number> {
    const [row] = await this.db.query<{ start: string | null }>(
      `SELECT max(start_offset) AS start FROM chat.blob_chunks WHERE blob_id = ? AND start_offset <= ?`,
      [blobId, offset],
    );
    return Number(row?.start ?? 0);
  }
}
