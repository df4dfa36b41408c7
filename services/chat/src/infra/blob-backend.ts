// The blob backend the settings choose (docs/configuration.md): PostgreSQL
// by default, or an S3-compatible bucket (the AWS SDK is loaded only then).
import type { Database } from '@bil/runtime';
import type { BlobBackend } from '../app/blobs/backend.js';
import { PostgresBlobBackend } from '../app/blobs/postgres-backend.js';
import type { ChatConfig } from '../config.js';

type BlobConfig = Pick<
  ChatConfig,
  | 'CHAT_BLOB_BACKEND'
  | 'CHAT_S3_BUCKET'
  | 'CHAT_S3_PREFIX'
  | 'CHAT_S3_REGION'
  | 'CHAT_S3_ENDPOINT'
  | 'CHAT_S3_FORCE_PATH_STYLE'
  | 'CHAT_S3_ACCESS_KEY_ID'
  | 'CHAT_S3_SECRET_ACCESS_KEY'
  | 'CHAT_S3_PRESIGN_SECONDS'
>;

export async function createBlobBackend(config: BlobConfig, db: Database): Promise<BlobBackend> {
  if (config.CHAT_BLOB_BACKEND === 'postgres') return new PostgresBlobBackend(db);
  const [{ S3Client }, { S3BlobBackend }] = await Promise.all([import('@aws-sdk/client-s3'), import('../app/blobs/s3-backend.js')]);
  const s3 = new S3Client({
    region: config.CHAT_S3_REGION,
    endpoint: config.CHAT_S3_ENDPOINT,
    forcePathStyle: config.CHAT_S3_FORCE_PATH_STYLE,
    credentials:
      config.CHAT_S3_ACCESS_KEY_ID && config.CHAT_S3_SECRET_ACCESS_KEY
        ? { accessKeyId: config.CHAT_S3_ACCESS_KEY_ID, secretAccessKey: config.CHAT_S3_SECRET_ACCESS_KEY }
        : undefined,
    // One retry policy: the SDK's own standard retries, three attempts.
    maxAttempts: 3,
  });
  return new S3BlobBackend(s3, {
    bucket: config.CHAT_S3_BUCKET!,
    prefix: config.CHAT_S3_PREFIX,
    presignSeconds: config.CHAT_S3_PRESIGN_SECONDS,
  });
}
