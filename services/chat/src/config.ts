import { MAX_GROUP_MEMBERS } from '@bil/proto/limits';
import { bool, checkServiceAuthConfig, commonConfig, serviceAuthConfig, int, loadConfig, port, str, url } from '@bil/runtime';

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
  CHAT_EXPIRY_INTERVAL_MS: int('how often the expiry job erases messages past their disappearing timer, in ms', 10_000, 100, 3_600_000),
};

export type ChatConfig = ReturnType<typeof loadChatConfig>;

/** `requireSecrets: false` for commands that serve nothing (`migrate`, `rebuild-projections`): they need only the database. */
export function loadChatConfig(env: NodeJS.ProcessEnv = process.env, opts: { requireSecrets?: boolean } = {}) {
  const config = loadConfig(chatConfigSchema, env);
  if (opts.requireSecrets ?? true) checkServiceAuthConfig(config);
  return config;
}
