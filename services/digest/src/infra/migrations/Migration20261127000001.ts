import { Migration } from '@mikro-orm/migrations';
import { eventStoreSchemaSql } from '@bil/runtime';

/**
 * Event store, the digest read models, the sealed-result store and the
 * service's local copies of the identity directory and chat membership.
 * Nothing here ever holds a transcript or a summary in plaintext.
 */
export class Migration20261127000001 extends Migration {
  override async up(): Promise<void> {
    for (const sql of eventStoreSchemaSql('digest')) this.addSql(sql);

    // Projections (rebuilt from the events).
    this.addSql(`CREATE TABLE digest.digests (
      request_id uuid PRIMARY KEY,
      user_id uuid NOT NULL,
      device_id uuid NOT NULL,
      chat_ids uuid[] NOT NULL,
      status text NOT NULL CHECK (status IN ('pending', 'ready', 'failed', 'expired')),
      failure_reason text NOT NULL DEFAULT '',
      method text NOT NULL DEFAULT '',
      requested_at timestamptz NOT NULL,
      completed_at timestamptz,
      expires_at timestamptz
    )`);
    this.addSql(`CREATE INDEX digests_pending_idx ON digest.digests (requested_at) WHERE status = 'pending'`);
    this.addSql(`CREATE INDEX digests_ready_idx ON digest.digests (expires_at) WHERE status = 'ready'`);
    this.addSql(`CREATE TABLE digest.policy_opt_outs (
      chat_id uuid NOT NULL,
      user_id uuid NOT NULL,
      switched_off_at timestamptz NOT NULL,
      PRIMARY KEY (chat_id, user_id)
    )`);

    // Sealed results: written with DigestCompleted (whose event holds only
    // their SHA-256), deleted when they expire. Not a projection: a rebuild
    // leaves it alone, and the event log never holds the ciphertext.
    this.addSql(`CREATE TABLE digest.results (
      request_id uuid NOT NULL,
      chat_id uuid NOT NULL,
      sealed text NOT NULL,
      expires_at timestamptz NOT NULL,
      PRIMARY KEY (request_id, chat_id)
    )`);
    this.addSql(`CREATE INDEX results_expires_idx ON digest.results (expires_at)`);

    // Local copies fed by durable consumers of identity.v1.> and chat.v1.chat.>.
    this.addSql(`CREATE TABLE digest.directory_users (
      user_id uuid PRIMARY KEY,
      identity_key text NOT NULL DEFAULT '',
      status text NOT NULL CHECK (status IN ('active', 'deleted')),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`);
    this.addSql(`CREATE TABLE digest.directory_devices (
      device_id uuid PRIMARY KEY,
      user_id uuid NOT NULL,
      encryption_key text NOT NULL,
      signing_key text NOT NULL,
      certificate text NOT NULL,
      certificate_issued_at bigint NOT NULL,
      status text NOT NULL CHECK (status IN ('active', 'revoked')),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`);
    this.addSql(`CREATE TABLE digest.chat_members (
      chat_id uuid NOT NULL,
      user_id uuid NOT NULL,
      PRIMARY KEY (chat_id, user_id)
    )`);
    this.addSql(`CREATE INDEX chat_members_user_idx ON digest.chat_members (user_id)`);
  }
}

/** Every migration, in order (explicit, so tsc output, tsx and vitest run the same list). */
