import { Migration } from '@mikro-orm/migrations';

/**
 * Issue #17 items 3 and 4: delete for everyone and disappearing messages.
 * A message row stays in place when its ciphertext is erased (`removed`, the
 * seq stays gap-free), with the sender's signed tombstone when they deleted
 * it; `expires_at` comes from the chat's timer (`chats.disappearing_ms`) at
 * send; the expiry job finds due messages by the partial index.
 */
export class Migration20270101000010 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`ALTER TABLE chat.chats ADD COLUMN disappearing_ms bigint NOT NULL DEFAULT 0`);
    this.addSql(`ALTER TABLE chat.messages ADD COLUMN removed boolean NOT NULL DEFAULT false`);
    this.addSql(`ALTER TABLE chat.messages ADD COLUMN tombstone jsonb`);
    this.addSql(`ALTER TABLE chat.messages ADD COLUMN expires_at timestamptz`);
    this.addSql(`CREATE INDEX messages_expiry_idx ON chat.messages (expires_at) WHERE expires_at IS NOT NULL AND NOT removed`);
  }
}
