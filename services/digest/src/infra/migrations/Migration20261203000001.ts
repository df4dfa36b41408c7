import { Migration } from '@mikro-orm/migrations';

/**
 * Signed digest consent: the newest statement of each member per chat (a
 * projection of DigestConsentChanged, rebuilt from the events). Holds signed
 * statements only, never message content.
 */
export class Migration20261203000001 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`CREATE TABLE digest.consents (
      chat_id uuid NOT NULL,
      user_id uuid NOT NULL,
      device_id uuid NOT NULL,
      include boolean NOT NULL,
      version bigint NOT NULL,
      consent text NOT NULL,
      updated_at timestamptz NOT NULL,
      PRIMARY KEY (chat_id, user_id)
    )`);
  }
}
