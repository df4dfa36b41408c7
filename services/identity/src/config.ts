import { ConfigError, bool, checkServiceAuthConfig, commonConfig, serviceAuthConfig, int, loadConfig, optionalStr, port, str, url } from '@bil/runtime';
import { DEFAULT_PUSH_ENDPOINT_HOSTS, parsePushHosts } from './domain/push-subscription.js';

export const identityConfigSchema = {
  ...commonConfig,
  ...serviceAuthConfig,
  DATABASE_URL: url('PostgreSQL URL, postgres://user@host:port/db', 'postgres://postgres@127.0.0.1:5432/bil', ['postgres:', 'postgresql:']),
  IDENTITY_GRPC_HOST: str('address the gRPC server binds (npm start: 127.0.0.1)', '0.0.0.0'),
  IDENTITY_GRPC_PORT: port('gRPC port', 50051),
  IDENTITY_METRICS_PORT: port('port of /metrics, /healthz and /readyz', 9101),
  IDENTITY_MIGRATE_ON_START: bool('apply pending migrations at start (the Helm chart runs them as a Job instead)', true),
  IDENTITY_JWT_PRIVATE_KEY: optionalStr('PKCS8 PEM of the Ed25519 key that signs access tokens; required in production', { secret: true }),
  IDENTITY_JWT_PREVIOUS_PUBLIC_KEYS: str('PEM public keys still accepted during a key rotation, concatenated', ''),
  ACCESS_TOKEN_TTL_SECONDS: int('access token lifetime in seconds', 900, 30, 86_400),
  REFRESH_TOKEN_TTL_SECONDS: int('refresh token (session) lifetime in seconds, renewed on each refresh', 30 * 86_400, 60, 365 * 86_400),
  IDENTITY_MAX_DEVICES_PER_USER: int('how many active devices an account may have', 16, 1, 1000),
  IDENTITY_SCRYPT_LOG2N: int('scrypt cost: log2 of N (15 = 32 MiB per hash with r = 8)', 15, 14, 20),
  IDENTITY_HASH_CONCURRENCY: int('password hashes (scrypt) run at once by this process; each takes 32 MiB and a core for ~50-100 ms', 2, 1, 64),
  IDENTITY_HASH_QUEUE: int('password hashes that may wait for a slot; beyond that a sign-in or registration fails at once with 503 + Retry-After', 32, 0, 10_000),
  PUSH_ENDPOINT_HOSTS: {
    doc: 'hosts a Web Push subscription endpoint may be on, comma-separated; *.domain for its subdomains (docs/push.md)',
    default: DEFAULT_PUSH_ENDPOINT_HOSTS,
    parse: parsePushHosts,
  },
  IDENTITY_HASH_PER_ACCOUNT: int('password hashes of one account queued or running at once; beyond that 429 rate_limited (Retry-After 1)', 2, 1, 100),
};

export type IdentityConfig = ReturnType<typeof loadIdentityConfig>;

/** `requireSecrets: false` for commands that use no key (`migrate`): they need only the database. */
export function loadIdentityConfig(env: NodeJS.ProcessEnv = process.env, opts: { requireSecrets?: boolean } = {}) {
  const config = loadConfig(identityConfigSchema, env);
  if ((opts.requireSecrets ?? true) && config.NODE_ENV === 'production' && !config.IDENTITY_JWT_PRIVATE_KEY) {
    throw new ConfigError(['IDENTITY_JWT_PRIVATE_KEY is required when NODE_ENV=production (an Ed25519 PKCS8 PEM)']);
  }
  if (opts.requireSecrets ?? true) checkServiceAuthConfig(config);
  return config;
}
