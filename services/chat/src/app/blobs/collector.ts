// The blob collector (docs/chat.md "Blobs"): deletes completed blobs that no
// message of an active chat references once they are older than a grace
// period (time to send the message after the upload), and uploads still
// incomplete after a TTL. Whatever drops a message (deletion, expiry) drops
// its `message_blobs` rows with releaseMessageBlobs in its own transaction;
// the collector then removes the blobs nothing else references.
import type { Database, Logger, Sql } from '@bil/runtime';
import type { BlobBackend } from './backend.js';

export interface CollectorSettings {
  /** A completed blob no message references is kept this long after completion. */
  graceMs: number;
  /** An upload not completed within this long is deleted. */
  uploadTtlMs: number;
  /** Blobs deleted per transaction. */
  batch?: number;
}

/**
 * Locks and deletes one batch of collectable blob rows, returning their ids.
 * Parameters: completed before (timestamptz), created before (timestamptz), batch size.
 */
export const COLLECT_BLOBS_SQL = `DELETE FROM chat.blobs b WHERE b.blob_id IN (
    SELECT x.blob_id FROM chat.blobs x
    WHERE (x.status = 'complete' AND x.completed_at < ?::timestamptz AND NOT EXISTS (
             SELECT 1 FROM chat.message_blobs mb JOIN chat.chats c ON c.chat_id = mb.chat_id AND c.status = 'active'
             WHERE mb.blob_id = x.blob_id))
       OR (x.status = 'uploading' AND x.created_at < ?::timestamptz)
    LIMIT ? FOR UPDATE SKIP LOCKED)
  RETURNING b.blob_id`;

/**
 * Forgets which blobs the messages `seqs` of `chatId` referenced: call it in
 * the transaction that removes those messages (delete for everyone,
 * disappearing messages); the collector deletes the blobs later if nothing
 * else references them.
 */
export async function releaseMessageBlobs(tx: Sql, chatId: string, seqs: readonly number[]): Promise<void> {
  if (seqs.length === 0) return;
  await tx.query(`DELETE FROM chat.message_blobs WHERE chat_id = ? AND seq = ANY(?::bigint[])`, [chatId, `{${seqs.join(',')}}`]);
}

/** One collection pass; returns how many blobs it deleted. */
export async function collectBlobs(db: Database, backend: BlobBackend, settings: CollectorSettings, now = new Date()): Promise<number> {
  const batch = settings.batch ?? 100;
  const completedBefore = new Date(now.getTime() - settings.graceMs).toISOString();
  const createdBefore = new Date(now.getTime() - settings.uploadTtlMs).toISOString();
  let total = 0;
  for (;;) {
    const n = await db.tx(async (tx) => {
      const rows = await tx.query<{ blob_id: string }>(COLLECT_BLOBS_SQL, [completedBefore, createdBefore, batch]);
      const ids = rows.map((r) => r.blob_id);
      if (ids.length === 0) return 0;
      await backend.delete(tx, ids);
      // References left by chats that were deleted since.
      await tx.query(`DELETE FROM chat.message_blobs WHERE blob_id = ANY(?::uuid[])`, [`{${ids.join(',')}}`]);
      return ids.length;
    });
    total += n;
    if (n < batch) return total;
  }
}

/** Runs collectBlobs every `intervalMs`; stop() waits for a pass in progress. */
export function startBlobCollector(db: Database, backend: BlobBackend, settings: CollectorSettings & { intervalMs: number }, logger: Logger): { stop(): Promise<void> } {
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(async () => {
      try {
        const n = await collectBlobs(db, backend, settings);
        if (n > 0) logger.info({ blobs: n }, 'blob collector deleted unreferenced blobs');
      } catch (err) {
        logger.warn({ err }, 'blob collector pass failed');
      }
    });
  }, settings.intervalMs);
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await running;
    },
  };
}
