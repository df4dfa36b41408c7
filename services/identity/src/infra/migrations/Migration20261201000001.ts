import { Migration } from '@mikro-orm/migrations';

/**
 * Signed device lists (step 8): the latest list an account published and its
 * version. Accounts from before have none (NULL, version 0) until a device
 * holding the identity key publishes the first (docs/identity.md).
 */
export class Migration20261201000001 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`ALTER TABLE identity.users ADD COLUMN device_list text`);
    this.addSql(`ALTER TABLE identity.users ADD COLUMN device_list_version integer NOT NULL DEFAULT 0`);
  }
}
