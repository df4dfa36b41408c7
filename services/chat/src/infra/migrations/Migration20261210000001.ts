import { Migration } from '@mikro-orm/migrations';

/**
 * Step 8: signed leaves. `group_leaves` is a projection of MemberRemoved
 * events that carry a signed leave: one row per leave, with the chat's epoch
 * when it was recorded. A leave is pending while that epoch is still the
 * chat's current one (GetChat's `pending_leaves`); the next epoch ends it.
 */
export class Migration20261210000001 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`CREATE TABLE chat.group_leaves (
      chat_id uuid NOT NULL,
      recorded_epoch integer NOT NULL,
      user_id uuid NOT NULL,
      device_id uuid NOT NULL,
      leave jsonb NOT NULL,
      left_seq bigint NOT NULL,
      recorded_at timestamptz NOT NULL,
      PRIMARY KEY (chat_id, recorded_epoch, user_id)
    )`);
  }
}
