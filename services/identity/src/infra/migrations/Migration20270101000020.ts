import { Migration } from '@mikro-orm/migrations';

/**
 * Web Push (issue #17 item 5, docs/push.md): one subscription per device,
 * replaced when the device registers again, gone when the device is revoked
 * (the DeviceRevoked projection deletes it) or the account deleted (which
 * revokes every device). Operational state, not an event stream: a
 * subscription says nothing the protocol signs, and the push service may end
 * it at any time (404/410). No foreign key to identity.devices: rebuilding the
 * read models truncates devices, and must keep the subscriptions (setting one
 * checks that the device is active; revoking deletes it).
 */
export class Migration20270101000020 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`CREATE TABLE identity.push_subscriptions (
      device_id uuid PRIMARY KEY,
      user_id uuid NOT NULL,
      endpoint text NOT NULL,
      p256dh text NOT NULL,
      auth text NOT NULL,
      created_at timestamptz NOT NULL
    )`);
    this.addSql(`CREATE INDEX push_subscriptions_user_idx ON identity.push_subscriptions (user_id)`);
  }
}
