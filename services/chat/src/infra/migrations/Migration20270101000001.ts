import { Migration } from '@mikro-orm/migrations';

/**
 * Step 14 (issue #17.1): encrypted attachments. `blobs` is each upload's
 * state (owner, declared size, bytes received); `blob_chunks` holds the
 * ciphertext of the PostgreSQL blob backend, one row per append (stored
 * EXTERNAL: ciphertext does not compress, so TOAST does not try);
 * `message_blobs` records which message references which blob (written with
 * the message, read to authorise downloads, and what keeps a blob from the
 * collector). None of them is a projection of chat events: rebuilding the
 * read models leaves them alone.
 */
export class Migration20270101000001 extends Migration {
  override async up(): Promise<void> {
    this.addSql(`CREATE TABLE chat.blobs (
      blob_id uuid PRIMARY KEY,
      owner_user_id uuid NOT NULL,
      owner_device_id uuid NOT NULL,
      size bigint NOT NULL CHECK (size > 0),
      received bigint NOT NULL DEFAULT 0 CHECK (received >= 0 AND received <= size),
      status text NOT NULL CHECK (status IN ('uploading', 'complete')),
      created_at timestamptz NOT NULL,
      completed_at timestamptz
    )`);
    this.addSql(`CREATE INDEX blobs_owner_idx ON chat.blobs (owner_user_id)`);
    this.addSql(`CREATE INDEX blobs_collect_idx ON chat.blobs (status, created_at)`);
    this.addSql(`CREATE TABLE chat.blob_chunks (
      blob_id uuid NOT NULL,
      start_offset bigint NOT NULL,
      data bytea NOT NULL,
      PRIMARY KEY (blob_id, start_offset)
    )`);
    this.addSql(`ALTER TABLE chat.blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL`);
    this.addSql(`CREATE TABLE chat.message_blobs (
      chat_id uuid NOT NULL,
      seq bigint NOT NULL,
      blob_id uuid NOT NULL,
      PRIMARY KEY (chat_id, seq, blob_id)
    )`);
    this.addSql(`CREATE INDEX message_blobs_blob_idx ON chat.message_blobs (blob_id)`);
  }
}
