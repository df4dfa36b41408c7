import { Migration } from '@mikro-orm/migrations';

/**
 * Signed disappearing-message timers (issue #17 item 4): a personal chat
 * keeps the signed statement (bil.chat-timer.v1) that set its timer, as its
 * setter sent it, and returns it with the chat; null before the first and
 * for groups (their timer is in the signed group metadata).
 */
export class Migration20270101000011 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`ALTER TABLE chat.chats ADD COLUMN timer_statement jsonb`);
  }
}
