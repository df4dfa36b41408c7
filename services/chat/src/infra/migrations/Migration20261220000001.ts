import { Migration } from '@mikro-orm/migrations';

/**
 * Step 11 (issue #18): sends are group-committed and append to a chat's
 * message log at version = seq, taken under the chat's row lock
 * (EventStore.appendOwned), without a stream state row. The state rows the
 * message logs had (`messages-<chat id>`, rewritten per message) are read by
 * nothing any more: removed. The events stay the record.
 */
export class Migration20261220000001 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`DELETE FROM chat.streams WHERE stream_id LIKE 'messages-%'`);
  }
}
