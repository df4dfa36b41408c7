import { Migration } from '@mikro-orm/migrations';
import { eventStoreSchemaSql } from '@bil/runtime';
import { Migration20261201000001 } from './Migration20261201000001.js';
import { Migration20261230000001 } from './Migration20261230000001.js';
import { Migration20270101000020 } from './Migration20270101000020.js';

/** Event store, outbox checkpoint and the identity read models. */
export class Migration20261125000001 extends Migration {
  override async up(): Promise<void> {
    for (const sql of eventStoreSchemaSql('identity')) this.addSql(sql);
    this.addSql(`CREATE TABLE identity.users (
      user_id uuid PRIMARY KEY,
      username text NOT NULL,
      username_key text NOT NULL,
      display_name text NOT NULL DEFAULT '',
      identity_key text,
      identity_key_changed_at timestamptz,
      status text NOT NULL CHECK (status IN ('active', 'deleted')),
      created_at timestamptz NOT NULL,
      deleted_at timestamptz,
      CONSTRAINT users_username_key_key UNIQUE (username_key)
    )`);
    this.addSql(`CREATE TABLE identity.devices (
      device_id uuid PRIMARY KEY,
      user_id uuid NOT NULL REFERENCES identity.users (user_id),
      name text NOT NULL,
      encryption_key text NOT NULL,
      signing_key text NOT NULL,
      certificate text NOT NULL,
      certificate_issued_at bigint NOT NULL,
      status text NOT NULL CHECK (status IN ('active', 'revoked')),
      created_at timestamptz NOT NULL,
      revoked_at timestamptz
    )`);
    this.addSql(`CREATE INDEX devices_user_idx ON identity.devices (user_id) WHERE status = 'active'`);
    this.addSql(`CREATE TABLE identity.sessions (
      session_id uuid PRIMARY KEY,
      user_id uuid NOT NULL,
      device_id uuid NOT NULL,
      status text NOT NULL CHECK (status IN ('active', 'ended')),
      ended_reason text,
      expires_at timestamptz NOT NULL,
      created_at timestamptz NOT NULL,
      refreshed_at timestamptz
    )`);
    this.addSql(`CREATE INDEX sessions_user_active_idx ON identity.sessions (user_id) WHERE status = 'active'`);
    this.addSql(`CREATE INDEX sessions_device_active_idx ON identity.sessions (device_id) WHERE status = 'active'`);
  }
}

export const migrations = [
  { name: 'Migration20261125000001', class: Migration20261125000001 },
  { name: 'Migration20261201000001', class: Migration20261201000001 },
  { name: 'Migration20261230000001', class: Migration20261230000001 },
  { name: 'Migration20270101000020', class: Migration20270101000020 },
];
