import { bool, commonConfig, int, loadConfig, port, str, url } from '@bil/runtime';

export const chatConfigSchema = {
  ...commonConfig,
  DATABASE_URL: url('PostgreSQL URL, postgres://user@host:port/db', 'postgres://postgres@127.0.0.1:5432/bil', ['postgres:', 'postgresql:']),
  CHAT_GRPC_HOST: str('address the gRPC server binds', '0.0.0.0'),
  CHAT_GRPC_PORT: port('gRPC port', 50052),
  CHAT_METRICS_PORT: port('port of /metrics, /healthz and /readyz', 9102),
  CHAT_MIGRATE_ON_START: bool('apply pending migrations at start (the Helm chart runs them as a Job instead)', true),
  CHAT_MAX_GROUP_MEMBERS: int('how many members a group may have', 1024, 2, 1024),
  CHAT_DB_POOL_MAX: int('PostgreSQL connections in the pool', 20, 2, 200),
};

export type ChatConfig = ReturnType<typeof loadChatConfig>;

export function loadChatConfig(env: NodeJS.ProcessEnv = process.env) {
  return loadConfig(chatConfigSchema, env);
}
