import { ConfigError, bool, commonConfig, serviceAuthConfig, int, loadConfig, optionalStr, port, str, url, type ConfigOf } from '@bil/runtime';

const base64url32 = (doc: string) => ({
  doc,
  optional: true,
  secret: true,
  parse: (raw: string) => {
    if (!/^[A-Za-z0-9_-]{43}$/.test(raw)) throw new Error('is not 32 bytes in base64url (43 characters, no padding)');
    return raw;
  },
});

export const digestConfigSchema = {
  ...commonConfig,
  ...serviceAuthConfig,
  DATABASE_URL: url('PostgreSQL URL, postgres://user@host:port/db', 'postgres://postgres@127.0.0.1:5432/bil', ['postgres:', 'postgresql:']),
  DIGEST_GRPC_HOST: str('address the gRPC server binds (npm start: 127.0.0.1)', '0.0.0.0'),
  DIGEST_GRPC_PORT: port('gRPC port', 50054),
  DIGEST_METRICS_PORT: port('port of /metrics, /healthz and /readyz of the API process', 9104),
  DIGEST_WORKER_METRICS_PORT: port('port of /metrics, /healthz and /readyz of a worker process (0 picks a free port, for several workers on one host)', 9105),
  DIGEST_MIGRATE_ON_START: bool('apply pending migrations at start (the Helm chart runs them as a Job instead)', true),
  DIGEST_DB_POOL_MAX: int('PostgreSQL connections in the pool', 10, 2, 200),

  // Keys (docs/digest.md, "Keys"). Required in production; elsewhere a fixed, public development value is used.
  DIGEST_SERVICE_IDENTITY_SEED: base64url32('the service identity key (Ed25519 seed, 32 bytes base64url) whose public half clients pin'),
  DIGEST_SERVICE_IDENTITY_KEY: optionalStr('the published public service identity key (base64url) clients configure; when set, the process refuses to start if DIGEST_SERVICE_IDENTITY_SEED does not match it'),
  DIGEST_KEY_ENCRYPTION_KEY: base64url32('the key (32 bytes base64url) that encrypts the stored RSA private keys (AES-256-GCM)'),
  DIGEST_KEY_TTL_DAYS: int('how long a digest key is published before it is rotated (days)', 30, 1, 365),
  DIGEST_KEY_GRACE_MS: int('how long after its expiry a key still opens requests sealed to it (ms)', 3_600_000, 0, 30 * 86_400_000),

  // What clients are told, and the limits.
  DIGEST_MIN_UNREAD: int('below this many unread messages a client shows the messages instead of offering a digest', 20, 1, 100_000),
  DIGEST_MAX_CHATS_PER_REQUEST: int('chats per digest request', 20, 1, 200),
  DIGEST_MAX_TRANSCRIPT_BYTES: int('plaintext bytes of one chat transcript', 262_144, 1024, 4 * 1024 * 1024),
  DIGEST_RATE_PER_MINUTE: int('digest requests per user per minute', 5, 1, 10_000),
  DIGEST_DAILY_CAP: int('chats summarised per user per UTC day', 100, 1, 1_000_000),
  DIGEST_RESULT_TTL_MS: int('how long sealed results are kept (ms)', 86_400_000, 60_000, 30 * 86_400_000),
  DIGEST_PENDING_TIMEOUT_MS: int('a request still pending after this long fails as abandoned (ms)', 900_000, 10_000, 86_400_000),
  DIGEST_SWEEP_INTERVAL_MS: int('how often the API process expires results and abandons stuck requests (ms)', 60_000, 100, 3_600_000),

  // Queue and worker.
  DIGEST_QUEUE_NAME: str('BullMQ queue name (its keys live under REDIS_PREFIX + "bull:")', 'digest', { pattern: /^[A-Za-z0-9_-]+$/ }),
  DIGEST_WORKER_CONCURRENCY: int('jobs one worker process runs at once (a job mostly waits: on PostgreSQL, on the RSA work node:crypto runs off the main thread, on the model)', 16, 1, 256),
  DIGEST_JOB_ATTEMPTS: int('attempts per job when the model endpoint fails transiently (a job option: read by the API process when it enqueues)', 3, 1, 20),
  DIGEST_JOB_BACKOFF_MS: int('first retry delay of a job, doubled each time (ms; a job option, read by the API process)', 5000, 0, 3_600_000),
  DIGEST_JOB_TIMEOUT_MS: int('a job attempt taking longer fails with reason timeout (ms)', 300_000, 100, 3_600_000),
  // Crash recovery (docs/digest.md, "Queue and workers"): a SIGKILLed worker's job is back in the queue at most
  // about DIGEST_JOB_LOCK_MS + DIGEST_STALLED_INTERVAL_MS (15 s) after the kill, well within a client's 60 s wait.
  // The lock is renewed every DIGEST_JOB_LOCK_MS / 2 while a job runs, however long the model call takes.
  DIGEST_JOB_LOCK_MS: int('BullMQ lock duration, renewed every half of it while the job runs: a dead worker\'s job goes to another at most this plus DIGEST_STALLED_INTERVAL_MS later (ms)', 10_000, 500, 600_000),
  DIGEST_STALLED_INTERVAL_MS: int('how often (across all workers) the queue is checked for jobs whose worker died (ms)', 5_000, 100, 600_000),
  DIGEST_MAX_STALLED_COUNT: int('how many times a job whose worker died is put back in the queue before BullMQ fails it (a job that keeps killing workers)', 3, 1, 100),

  // Summariser.
  OPENAI_API_KEY: optionalStr('API key of an OpenAI-compatible endpoint; unset = the built-in extractive summariser', { secret: true }),
  OPENAI_BASE_URL: { ...url('base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:11434/v1', undefined, ['http:', 'https:']), optional: true },
  OPENAI_MODEL: str('model name', 'gpt-4o-mini'),
  OPENAI_TIMEOUT_MS: int('timeout of one model call (ms)', 60_000, 100, 600_000),
  OPENAI_MAX_RETRIES: int('retries of one model call on 408/409/429/5xx and connection errors (the SDK backs off exponentially and honours retry-after)', 3, 0, 10),
  OPENAI_JSON_MODE: bool('send response_format json_object (turn off for servers that reject it)', true),
  DIGEST_CHUNK_CHARS: int('transcripts longer than this are summarised in parts, then combined (characters)', 12_000, 500, 1_000_000),
};

export type DigestConfig = ConfigOf<typeof digestConfigSchema>;

/** Development-only secrets: public, so that `npm start` works out of the box; refused in production. */
export const DEV_IDENTITY_SEED = 'ZGV2ZWxvcG1lbnQtb25seS1kaWdlc3QtaWRlbnRpdHk';
export const DEV_KEY_ENCRYPTION_KEY = 'ZGV2ZWxvcG1lbnQtb25seS1kaWdlc3Qta2V5LXdyYXA';

/** `requireSecrets: false` for commands that use no key (`migrate`): they need only the database. */
export function loadDigestConfig(env: NodeJS.ProcessEnv = process.env, opts: { requireSecrets?: boolean } = {}): DigestConfig {
  const config = loadConfig(digestConfigSchema, env);
  if ((opts.requireSecrets ?? true) && config.NODE_ENV === 'production') {
    const missing = (['DIGEST_SERVICE_IDENTITY_SEED', 'DIGEST_KEY_ENCRYPTION_KEY'] as const).filter((k) => !config[k]);
    if (missing.length) {
      throw new ConfigError(missing.map((k) => `${k} is required in production (docs/digest.md, "Keys")`));
    }
  }
  return config;
}
