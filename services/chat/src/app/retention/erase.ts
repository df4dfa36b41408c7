// The one way a message's ciphertext leaves the database: delete for everyone
// (the MessageDeleted projection) and expiry (expiry.ts) both erase through
// eraseMessages, inside the caller's transaction. The message row stays as a
// tombstone (`removed`, so the chat's seq stays gap-free and history shows
// where it was); its envelope goes from its MessagePosted event (the only
// copy: the row refers to it), its wrapped keys from message_keys.
import type { Sql } from '@bil/runtime';
import { POSTED } from '../sql-fields.js';

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
  // MERGE HOOK (attach helper, issue #17.1): the attachments a message refers to go with it:
  //   DELETE FROM chat.message_blobs WHERE chat_id = ? AND seq = ANY (?::bigint[])
  await q.query(`UPDATE chat.messages SET removed = true, tombstone = COALESCE(?::jsonb, tombstone) WHERE chat_id = ? AND seq = ANY (?::bigint[])`, [
    tombstone ? JSON.stringify(tombstone) : null,
    chatId,
    list,
  ]);
}
