import { MAX_GROUP_MEMBERS } from '@bil/proto/limits';
import { ConfigError, bool, checkServiceAuthConfig, commonConfig, serviceAuthConfig, int, loadConfig, oneOf, optionalStr, port, str, url } from '@bil/runtime';

export const chatConfigSchema = {
  ...commonConfig,
  ...serviceAuthConfig,
  DATABASE_URL: url('PostgreSQL URL, postgres://user@host:port/db', 'postgres://postgres@127.0.0.1:5432/bil', ['postgres:', 'postgresql:']),
  CHAT_GRPC_HOST: str('address the gRPC server binds (npm start: 127.0.0.1)', '0.0.0.0'),
  CHAT_GRPC_PORT: port('gRPC port', 50052),
  CHAT_METRICS_PORT: port('port of /metrics, /healthz and /readyz', 9102),
  CHAT_MIGRATE_ON_START: bool('apply pending migrations at start (the Helm chart runs them as a Job instead)', true),
  CHAT_MAX_GROUP_MEMBERS: int('how many members a group may have', MAX_GROUP_MEMBERS, 2, MAX_GROUP_MEMBERS),
  CHAT_DB_POOL_MAX: int('PostgreSQL connections in the pool', 20, 2, 200),
  CHAT_BLOB_QUOTA_BYTES: int('most bytes of attachments (blob ciphertext) one user may hold', 1024 * 1024 * 1024, 0),
  CHAT_BLOB_GRACE_SECONDS: int('how long a completed blob no message references is kept before the collector deletes it', 24 * 3600, 0),
  CHAT_BLOB_UPLOAD_TTL_SECONDS: int('how long an incomplete upload is kept', 24 * 3600, 60),
  CHAT_BLOB_COLLECT_INTERVAL_SECONDS: int('how often the blob collector runs', 600, 1),
  CHAT_BLOB_BACKEND: oneOf('where attachment ciphertext is stored: postgres (the chat database) or s3 (an S3-compatible bucket)', ['postgres', 's3'] as const, 'postgres'),
  CHAT_S3_BUCKET: optionalStr('the bucket (with CHAT_BLOB_BACKEND=s3)'),
  CHAT_S3_PREFIX: str('a prefix for every object key in the bucket', 'blobs/', { pattern: /^[A-Za-z0-9_./-]{0,200}$/ }),
  CHAT_S3_REGION: str('the bucket\'s region', 'us-east-1', { pattern: /^[a-z0-9-]{1,40}$/ }),
  CHAT_S3_ENDPOINT: optionalStr('the S3 API endpoint of an S3-compatible service, http(s)://host:port (unset: AWS for the region)'),
  CHAT_S3_FORCE_PATH_STYLE: bool('address the bucket in the path (most S3-compatible servers) instead of the host name', false),
  CHAT_S3_ACCESS_KEY_ID: optionalStr('access key id (unset: the AWS default credential chain, e.g. an IAM role)', { secret: true }),
  CHAT_S3_SECRET_ACCESS_KEY: optionalStr('secret access key, with CHAT_S3_ACCESS_KEY_ID', { secret: true }),
  CHAT_S3_PRESIGN_SECONDS: int('how long a presigned upload or download URL stays valid, in seconds', 900, 60, 7 * 24 * 3600),
  CHAT_EXPIRY_INTERVAL_MS: int('how often the expiry job erases messages past their disappearing timer, in ms', 10_000, 100, 3_600_000),
};

export type ChatConfig = ReturnType<typeof loadChatConfig>;

/** `requireSecrets: false` for commands that serve nothing (`migrate`, `rebuild-projections`): they need only the database. */
export function loadChatConfig(env: NodeJS.ProcessEnv = process.env, opts: { requireSecrets?: boolean } = {}) {
  const config = loadConfig(chatConfigSchema, env);
  const problems = s3Problems(config);
  if (problems.length > 0) throw new ConfigError(problems);
  if (opts.requireSecrets ?? true) checkServiceAuthConfig(config);
  return config;
}

/** The S3 settings that must come together. */
function s3Problems(config: ReturnType<typeof loadConfig<typeof chatConfigSchema>>): string[] {
  const problems: string[] = [];
  if (config.CHAT_BLOB_BACKEND === 's3' && !config.CHAT_S3_BUCKET) problems.push('CHAT_S3_BUCKET is required with CHAT_BLOB_BACKEND=s3');
  if (!config.CHAT_S3_ACCESS_KEY_ID !== !config.CHAT_S3_SECRET_ACCESS_KEY) {
    problems.push('CHAT_S3_ACCESS_KEY_ID and CHAT_S3_SECRET_ACCESS_KEY come together (or neither, for the default credential chain)');
  }
  if (config.CHAT_S3_ENDPOINT !== undefined) {
    let ok = false;
    try {
      ok = ['http:', 'https:'].includes(new URL(config.CHAT_S3_ENDPOINT).protocol);
    } catch {
      ok = false;
    }
    if (!ok) problems.push('CHAT_S3_ENDPOINT must be an http(s) URL');
  }
  return problems;
}
