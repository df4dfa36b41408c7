import { Migration } from '@mikro-orm/migrations';

/**
 * Step 12 (issue #15): the send path reads no stored state's JSON. Each chat
 * row carries the version of its chat stream (`chat_version`), set by the
 * read-models projection in the transaction of every event on that stream;
 * the send path reads it under the chat's row lock and keeps the decider
 * states in memory by it (app/send/chat-states.ts). Existing rows take their
 * stream's current version.
 */
export class Migration20261231000001 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`ALTER TABLE chat.chats ADD COLUMN chat_version integer NOT NULL DEFAULT 0`);
    this.addSql(`UPDATE chat.chats c SET chat_version = s.version FROM chat.streams s WHERE s.stream_id = 'chat-' || c.chat_id::text`);
  }
}
