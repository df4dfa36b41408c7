// The one way a message's ciphertext leaves the database: delete for everyone
// (the MessageDeleted projection) and expiry (expiry.ts) both erase through
// eraseMessages, inside the caller's transaction. The message row stays as a
// tombstone (`removed`, so the chat's seq stays gap-free and history shows
// where it was); its envelope goes from its MessagePosted event (the only
// copy: the row refers to it), its wrapped keys from message_keys.
import type { Sql } from '@bil/runtime';
import { POSTED } from '../sql-fields.js';
import { releaseMessageBlobs } from '../blobs/collector.js';

/**
 * Erases the ciphertext and keys of these messages of one chat and marks them
 * removed, with the sender's signed tombstone when given. Idempotent.
 */
export async function eraseMessages(q: Sql, chatId: string, seqs: readonly number[], tombstone?: Record<string, unknown>): Promise<void> {
  if (seqs.length === 0) return;
  const list = `{${seqs.join(',')}}`;
  await q.query(
    `UPDATE chat.events e SET data = e.data - '${POSTED.envelope}' - '${POSTED.wrappedKeys}'
     FROM chat.messages m WHERE m.chat_id = ? AND m.seq = ANY (?::bigint[]) AND e.position = m.event_position`,
    [chatId, list],
  );
  await q.query(`DELETE FROM chat.message_keys WHERE chat_id = ? AND seq = ANY (?::bigint[])`, [chatId, list]);
  // The attachments it referred to are released (the blob collector deletes the blobs nothing else references).
  await releaseMessageBlobs(q, chatId, seqs);
  await q.query(`UPDATE chat.messages SET removed = true, tombstone = COALESCE(?::jsonb, tombstone) WHERE chat_id = ? AND seq = ANY (?::bigint[])`, [
    tombstone ? JSON.stringify(tombstone) : null,
    chatId,
    list,
  ]);
}
