import { Migration } from '@mikro-orm/migrations';

/**
 * Step 11 (issue #18): a message is written once.
 *
 * - The MessagePosted event is the record of a message's envelope; the
 *   `messages` projection keeps a reference to it (`event_position`) instead
 *   of a second copy (a ~3 KB envelope was a second TOAST row per message).
 *   History reads join the event by primary key. Existing rows are pointed
 *   at their events (stream `messages-<chat>`, version = seq) and their copy
 *   dropped.
 * - Sends are group-committed and append to a chat's message log at version
 *   = seq, taken under the chat's row lock (EventStore.appendOwned), without
 *   a stream state row: the message logs' state rows (`messages-<chat id>`,
 *   rewritten per message) are read by nothing any more and removed.
 */
export class Migration20261220000001 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`ALTER TABLE chat.messages ADD COLUMN event_position bigint`);
    this.addSql(`UPDATE chat.messages m SET event_position = e.position FROM chat.events e
      WHERE e.stream_id = 'messages-' || m.chat_id::text AND e.stream_version = m.seq`);
    this.addSql(`ALTER TABLE chat.messages ALTER COLUMN event_position SET NOT NULL`);
    this.addSql(`ALTER TABLE chat.messages DROP COLUMN envelope`);
    this.addSql(`DELETE FROM chat.streams WHERE stream_id LIKE 'messages-%'`);
  }
}
