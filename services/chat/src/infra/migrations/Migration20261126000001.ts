import { Migration } from '@mikro-orm/migrations';
import { eventStoreSchemaSql } from '@bil/runtime';

/** Event store, outbox checkpoint, chat types, the chat read models and the local device directory. */
export class Migration20261126000001 extends Migration {
  override async up(): Promise<void> {
    for (const sql of eventStoreSchemaSql('chat')) this.addSql(sql);

    // Reference data, not a projection: the type fixes the key scheme.
    this.addSql(`CREATE TABLE chat.chat_types (
      type text PRIMARY KEY,
      key_scheme text NOT NULL CHECK (key_scheme IN ('direct', 'group')),
      description text NOT NULL
    )`);
    this.addSql(`INSERT INTO chat.chat_types (type, key_scheme, description) VALUES
      ('personal', 'direct', 'two users; each message key is wrapped per recipient device'),
      ('group', 'group', 'owner, admins and members; message keys derive from the current epoch key')`);

    // Projections (rebuilt from the events).
    this.addSql(`CREATE TABLE chat.chats (
      chat_id uuid PRIMARY KEY,
      type text NOT NULL REFERENCES chat.chat_types (type),
      title text NOT NULL DEFAULT '',
      created_by uuid NOT NULL,
      created_at timestamptz NOT NULL,
      status text NOT NULL CHECK (status IN ('active', 'deleted')),
      last_seq bigint NOT NULL DEFAULT 0,
      last_activity_at timestamptz NOT NULL,
      epoch integer NOT NULL DEFAULT 0,
      epoch_rotation_required boolean NOT NULL DEFAULT false,
      member_count integer NOT NULL DEFAULT 0,
      pair_key text,
      CONSTRAINT chats_pair_key_key UNIQUE (pair_key)
    )`);
    // One row per membership interval: a member sees messages with joined_seq < seq <= left_seq.
    this.addSql(`CREATE TABLE chat.chat_members (
      chat_id uuid NOT NULL,
      user_id uuid NOT NULL,
      joined_version integer NOT NULL,
      role text NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
      joined_seq bigint NOT NULL,
      joined_at timestamptz NOT NULL,
      left_seq bigint,
      left_at timestamptz,
      PRIMARY KEY (chat_id, user_id, joined_version)
    )`);
    this.addSql(`CREATE UNIQUE INDEX chat_members_current_key ON chat.chat_members (chat_id, user_id) WHERE left_seq IS NULL`);
    this.addSql(`CREATE INDEX chat_members_user_idx ON chat.chat_members (user_id) WHERE left_seq IS NULL`);
    this.addSql(`CREATE TABLE chat.group_epochs (
      chat_id uuid NOT NULL,
      epoch integer NOT NULL,
      record_hash text NOT NULL,
      record jsonb NOT NULL,
      signer_user_id uuid NOT NULL,
      signer_device_id uuid NOT NULL,
      created_at timestamptz NOT NULL,
      PRIMARY KEY (chat_id, epoch)
    )`);
    this.addSql(`CREATE TABLE chat.group_keys (
      chat_id uuid NOT NULL,
      epoch integer NOT NULL,
      device_id uuid NOT NULL,
      user_id uuid NOT NULL,
      wrapped_key text NOT NULL,
      PRIMARY KEY (chat_id, epoch, device_id)
    )`);
    this.addSql(`CREATE TABLE chat.messages (
      chat_id uuid NOT NULL,
      seq bigint NOT NULL,
      message_id uuid NOT NULL,
      sender_user_id uuid NOT NULL,
      sender_device_id uuid NOT NULL,
      epoch integer NOT NULL,
      envelope jsonb NOT NULL,
      created_at timestamptz NOT NULL,
      PRIMARY KEY (chat_id, seq),
      CONSTRAINT messages_sender_message_key UNIQUE (sender_device_id, message_id)
    )`);
    this.addSql(`CREATE TABLE chat.message_keys (
      chat_id uuid NOT NULL,
      seq bigint NOT NULL,
      device_id uuid NOT NULL,
      wrapped_key text NOT NULL,
      PRIMARY KEY (chat_id, seq, device_id)
    )`);
    this.addSql(`CREATE TABLE chat.message_reads (
      chat_id uuid NOT NULL,
      user_id uuid NOT NULL,
      last_read_seq bigint NOT NULL,
      updated_at timestamptz NOT NULL,
      PRIMARY KEY (chat_id, user_id)
    )`);

    // The local directory of users and devices, kept by a durable consumer of
    // identity.v1.* (not a projection of chat events: rebuild leaves it alone).
    this.addSql(`CREATE TABLE chat.directory_users (
      user_id uuid PRIMARY KEY,
      status text NOT NULL CHECK (status IN ('active', 'deleted')),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`);
    this.addSql(`CREATE TABLE chat.directory_devices (
      device_id uuid PRIMARY KEY,
      user_id uuid NOT NULL,
      signing_key text NOT NULL,
      status text NOT NULL CHECK (status IN ('active', 'revoked')),
      registered_at timestamptz NOT NULL,
      revoked_at timestamptz
    )`);
    this.addSql(`CREATE INDEX directory_devices_user_idx ON chat.directory_devices (user_id) WHERE status = 'active'`);
  }
}

