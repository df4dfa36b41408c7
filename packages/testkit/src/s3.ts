// A real S3-compatible server for tests (s3rver: the S3 REST API over HTTP,
// objects in a temporary directory), on a port of its own with one bucket.
// The chat service's S3 blob backend and the clients' presigned transfers are
// tested against it; it is stopped and its directory removed by `stop`.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver from 's3rver';
import { freePort } from './ports.js';

export interface TestS3 {
  /** http://127.0.0.1:PORT (path-style addressing). */
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** The chat service's settings for this bucket (CHAT_BLOB_BACKEND=s3 and CHAT_S3_*, path-style). */
  chatEnv: Record<string, string>;
  stop(): Promise<void>;
}

/** s3rver's fixed credentials. */
const ACCESS_KEY = 'S3RVER';

/**
 * Starts an S3-compatible server with `bucket` created. `corsOrigin` lets a
 * browser page of that origin PUT and GET presigned URLs, as a bucket's CORS
 * rules would in production.
 */
export async function startTestS3(opts: { bucket?: string; corsOrigin?: string } = {}): Promise<TestS3> {
  const bucket = opts.bucket ?? 'bil-blobs';
  const directory = await mkdtemp(join(tmpdir(), 'bil-s3-'));
  const port = await freePort();
  const cors = opts.corsOrigin
    ? `<CORSConfiguration><CORSRule><AllowedOrigin>${opts.corsOrigin}</AllowedOrigin><AllowedMethod>GET</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader></CORSRule></CORSConfiguration>`
    : undefined;
  const server = new S3rver({
    address: '127.0.0.1',
    port,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket, configs: cors ? [cors] : [] }],
  });
  await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const region = 'us-east-1';
  return {
    endpoint,
    bucket,
    region,
    accessKeyId: ACCESS_KEY,
    secretAccessKey: ACCESS_KEY,
    chatEnv: {
      CHAT_BLOB_BACKEND: 's3',
      CHAT_S3_BUCKET: bucket,
      CHAT_S3_ENDPOINT: endpoint,
      CHAT_S3_REGION: region,
      CHAT_S3_FORCE_PATH_STYLE: 'true',
      CHAT_S3_ACCESS_KEY_ID: ACCESS_KEY,
      CHAT_S3_SECRET_ACCESS_KEY: ACCESS_KEY,
    },
    stop: async () => {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
