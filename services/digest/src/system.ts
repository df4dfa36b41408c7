// The composition root, shared by main.ts and the integration tests: the API
// process (gRPC, outbox relay, directory consumers, sweeper) and the worker
// process (BullMQ worker) are built from the same parts.
import { Worker } from 'bullmq';
import { Counter, Gauge, Histogram } from 'prom-client';
import { fromBase64Url, identityKeyFromSeed, toBase64Url, type Ed25519KeyPair } from '@bil/crypto';
import {
  Database,
  EventStore,
  GrpcServer,
  ServiceAuth,
  Metrics,
  OutageLog,
  OutboxRelay,
  applyMigrations,
  connectNats,
  connectRedis,
  ensureStream,
  isDependencyUnavailable,
  watchRedis,
  type DurableConsumer,
  type Logger,
  type Nats,
  type Redis,
} from '@bil/runtime';
import { loadDigestProto } from '@bil/proto';
import { ExtractiveSummarizer, ModelSummarizer, type Summarizer } from '@bil/summarizer';
import { DEV_IDENTITY_SEED, DEV_KEY_ENCRYPTION_KEY, type DigestConfig } from './config.js';
import { checkPublishedKey } from './service-key.js';
import { migrations } from './infra/migrations/index.js';
import { digestDecider, digestStream } from './domain/digest/digest.js';
import { digestReadModels } from './app/projections/read-models.js';
import { KeyRing } from './app/key-ring.js';
import { DigestApp, type DigestSettings } from './app/digest-app.js';
import { DigestConsents } from './app/consent.js';
import { DigestWorker, RetryableJobError } from './app/digest-worker.js';
import { digestIntegrationEvent } from './infra/integration-events.js';
import { directoryConsumers } from './infra/directory.js';
import { DigestQueue, bullConnection, queuePrefix, type DigestJob } from './infra/queue.js';
import { DigestLimits } from './infra/rate-limit.js';
import { digestHandlers } from './grpc/handlers.js';

export interface Core {
  db: Database;
  store: EventStore;
  keys: KeyRing;
  identity: Ed25519KeyPair;
  close(): Promise<void>;
}

/** Database (migrated if configured), event store and key ring. Warns when development keys are in use. */
/** `migrate`: applies pending migrations with nothing but the database (no keys, no NATS). */
export async function migrateOnly(config: DigestConfig, logger: Logger): Promise<void> {
  const db = await Database.connect({ url: config.DATABASE_URL, schema: 'digest', migrations, logger, poolMax: 1 });
  try {
    await applyMigrations(db, logger);
  } finally {
    await db.close();
  }
}

export async function openCore(config: DigestConfig, logger: Logger, opts: { migrate?: boolean } = {}): Promise<Core> {
  const db = await Database.connect({ url: config.DATABASE_URL, schema: 'digest', migrations, logger, poolMax: config.DIGEST_DB_POOL_MAX });
  if (opts.migrate ?? config.DIGEST_MIGRATE_ON_START) {
    await applyMigrations(db, logger);
  }
  const store = new EventStore(db, [digestReadModels]);
  if (!config.DIGEST_SERVICE_IDENTITY_SEED || !config.DIGEST_KEY_ENCRYPTION_KEY) {
    logger.warn('using the public development digest keys (set DIGEST_SERVICE_IDENTITY_SEED and DIGEST_KEY_ENCRYPTION_KEY outside development)');
  }
  const identity = identityKeyFromSeed(fromBase64Url(config.DIGEST_SERVICE_IDENTITY_SEED ?? DEV_IDENTITY_SEED, 32));
  checkPublishedKey(config, toBase64Url(identity.publicKey));
  const keys = new KeyRing(store, {
    identity,
    kek: fromBase64Url(config.DIGEST_KEY_ENCRYPTION_KEY ?? DEV_KEY_ENCRYPTION_KEY, 32),
    ttlMs: config.DIGEST_KEY_TTL_DAYS * 86_400_000,
    graceMs: config.DIGEST_KEY_GRACE_MS,
  });
  return { db, store, keys, identity, close: () => db.close() };
}

export function settingsOf(config: DigestConfig): DigestSettings {
  return {
    minUnread: config.DIGEST_MIN_UNREAD,
    maxChatsPerRequest: config.DIGEST_MAX_CHATS_PER_REQUEST,
    maxTranscriptBytes: config.DIGEST_MAX_TRANSCRIPT_BYTES,
    resultTtlMs: config.DIGEST_RESULT_TTL_MS,
    pendingTimeoutMs: config.DIGEST_PENDING_TIMEOUT_MS,
    modelConfigured: Boolean(config.OPENAI_API_KEY),
  };
}

/** The model summariser when OPENAI_API_KEY is set, the built-in extractive one otherwise. */
export function buildSummarizer(config: DigestConfig, logger: Logger): Summarizer {
  if (!config.OPENAI_API_KEY) return new ExtractiveSummarizer();
  return new ModelSummarizer({
    apiKey: config.OPENAI_API_KEY,
    baseURL: config.OPENAI_BASE_URL,
    model: config.OPENAI_MODEL,
    timeoutMs: config.OPENAI_TIMEOUT_MS,
    maxRetries: config.OPENAI_MAX_RETRIES,
    jsonMode: config.OPENAI_JSON_MODE,
    chunkChars: config.DIGEST_CHUNK_CHARS,
    onFallback: (why) => logger.warn({ why }, 'model answer unusable; used the extractive summary'),
  });
}

export interface Api {
  app: DigestApp;
  consents: DigestConsents;
  grpc: GrpcServer;
  grpcPort: number;
  relay: OutboxRelay;
  nats: Nats;
  redis: Redis;
  queue: DigestQueue;
  consumers: DurableConsumer[];
  metrics: Metrics;
  /** Stops in reverse start order (the caller closes the core). */
  stop(): Promise<void>;
}

/** The API process: gRPC, outbox relay, directory consumers, key freshness and the sweeper. */
export async function startApi(config: DigestConfig, logger: Logger, core: Core, opts: { grpcPort?: number } = {}): Promise<Api> {
  const stops: Array<() => Promise<unknown>> = [];
  const metrics = new Metrics('digest');
  const nats = await connectNats(config.NATS_URL, config.NATS_SUBJECT_PREFIX, 'digest', { streamReplicas: config.NATS_STREAM_REPLICAS });
  stops.push(() => nats.nc.drain());
  await ensureStream(nats, 'digest');

  // The worker processes commit results without a relay or a NATS connection of their own, so nothing
  // kicks this relay for them: it polls at 200 ms (not the default 1 s) to announce a ready digest soon.
  const relay = new OutboxRelay({ db: core.db, nats, logger, metrics, pollIntervalMs: 200, toMessage: (e) => digestIntegrationEvent(nats.prefix, e) });
  relay.attach(core.store);
  relay.start();
  stops.push(() => relay.stop());

  await core.keys.ensureFresh();

  const redis = connectRedis(config.REDIS_URL, config.REDIS_PREFIX, logger);
  stops.push(() => redis.quit());
  const bull = bullConnection(config.REDIS_URL);
  watchRedis(bull, logger, 'redis (job queue)');
  stops.push(() => bull.quit());
  const queue = new DigestQueue(
    { redisUrl: config.REDIS_URL, redisPrefix: config.REDIS_PREFIX, name: config.DIGEST_QUEUE_NAME, attempts: config.DIGEST_JOB_ATTEMPTS, backoffMs: config.DIGEST_JOB_BACKOFF_MS },
    bull,
  );
  stops.push(() => queue.close());
  new Gauge({
    name: 'bil_digest_queue_jobs',
    help: "Digest jobs in the queue by state (waiting, delayed, active): the digest workers' backlog",
    labelNames: ['state'],
    registers: [metrics.registry],
    async collect() {
      try {
        for (const [state, n] of Object.entries(await queue.counts())) this.set({ state }, n);
      } catch {
        this.reset(); // Redis unreachable: no number rather than a stale one (readiness reports it)
      }
    },
  });
  const limits = new DigestLimits(redis, config.DIGEST_RATE_PER_MINUTE, config.DIGEST_DAILY_CAP);
  const app = new DigestApp(core.db, core.store, core.keys, queue, limits, settingsOf(config), logger);
  const consents = new DigestConsents(core.db, core.store);

  const consumers = directoryConsumers({ nats, db: core.db, logger, app });
  for (const c of consumers) {
    await c.start();
    stops.push(() => c.stop());
  }

  // Housekeeping: expire results, abandon stuck requests, keep a fresh key.
  // A dependency outage fails every sweep: one line when it starts, one when it ends.
  let sweeping = false;
  const sweepOutage = new OutageLog(logger, 'digest sweep');
  const sweeper = setInterval(() => {
    if (sweeping) return;
    sweeping = true;
    void Promise.all([app.sweep(), core.keys.ensureFresh()])
      .then(() => sweepOutage.ok(), (err: unknown) => sweepOutage.failed(err))
      .finally(() => (sweeping = false));
  }, config.DIGEST_SWEEP_INTERVAL_MS);
  sweeper.unref();
  stops.push(async () => clearInterval(sweeper));

  // Sealed transcripts of up to 20 chats of 256 KiB each, base64url.
  const grpc = new GrpcServer({ logger, metrics, maxReceiveBytes: 32 * 1024 * 1024, auth: ServiceAuth.fromConfig('digest', config, logger) });
  grpc.add('bil.digest.v1.DigestService', loadDigestProto().bil.digest.v1.DigestService.service, digestHandlers(app, consents));
  const grpcPort = await grpc.listen(config.DIGEST_GRPC_HOST, opts.grpcPort ?? config.DIGEST_GRPC_PORT);
  stops.push(() => grpc.shutdown(2000));

  return {
    app,
    consents,
    grpc,
    grpcPort,
    relay,
    nats,
    redis,
    queue,
    consumers,
    metrics,
    stop: async () => {
      for (const s of stops.reverse()) await s().catch(() => undefined);
    },
  };
}

export interface WorkerProcess {
  worker: Worker<DigestJob>;
  processor: DigestWorker;
  metrics: Metrics;
  stop(): Promise<void>;
}

/** A worker process: takes jobs from the queue, `DIGEST_WORKER_CONCURRENCY` at a time. */
export function startWorker(config: DigestConfig, logger: Logger, core: Core, summarizer: Summarizer = buildSummarizer(config, logger)): WorkerProcess {
  const metrics = new Metrics('digest-worker');
  const outcomes = new Counter({ name: 'bil_digest_jobs_total', help: 'Digest job attempts by outcome', labelNames: ['outcome'], registers: [metrics.registry] });
  const duration = new Histogram({
    name: 'bil_digest_job_duration_seconds',
    help: 'Digest job attempt duration',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [metrics.registry],
  });
  const processor = new DigestWorker(
    core.db,
    core.store,
    core.keys,
    core.identity,
    summarizer,
    { resultTtlMs: config.DIGEST_RESULT_TTL_MS, jobTimeoutMs: config.DIGEST_JOB_TIMEOUT_MS },
    logger,
  );
  const connection = bullConnection(config.REDIS_URL);
  watchRedis(connection, logger, 'redis (digest worker)');
  const worker = new Worker<DigestJob>(
    config.DIGEST_QUEUE_NAME,
    async (job) => {
      const end = duration.startTimer();
      try {
        const outcome = await processor.process(job.data, { made: job.attemptsMade, max: job.opts.attempts ?? 1 });
        outcomes.inc({ outcome });
      } catch (err) {
        outcomes.inc({ outcome: err instanceof RetryableJobError ? 'retry' : 'error' });
        throw err;
      } finally {
        end();
      }
    },
    {
      connection,
      prefix: queuePrefix(config.REDIS_PREFIX),
      concurrency: config.DIGEST_WORKER_CONCURRENCY,
      lockDuration: config.DIGEST_JOB_LOCK_MS,
      stalledInterval: config.DIGEST_STALLED_INTERVAL_MS,
      maxStalledCount: config.DIGEST_MAX_STALLED_COUNT,
    },
  );
  // A job that stalled more than DIGEST_MAX_STALLED_COUNT times (it keeps killing its workers) is failed by
  // BullMQ without running the processor: fail the request now rather than leave it to the sweeper (ABANDONED).
  worker.on('failed', (job, err) => {
    if (!job || err?.message !== 'job stalled more than allowable limit') return;
    logger.error({ requestId: job.data.requestId }, 'digest job stalled too many times; failing it');
    void core.store
      .handle(digestDecider, digestStream(job.data.requestId), { type: 'FailDigest', reason: 'internal', now: new Date().toISOString() })
      .catch((e: unknown) => logger.error({ err: { message: (e as Error)?.message } }, 'could not fail a stalled digest'));
  });
  // Only fixed texts: a job error never carries transcript content, but be sure.
  // Redis unreachable is logged once per state change by the connection's watcher, not once per reconnect here.
  worker.on('error', (err) => {
    if (!isDependencyUnavailable(err)) logger.error({ err: { name: err?.name } }, 'digest worker error');
  });
  return {
    worker,
    processor,
    metrics,
    stop: async () => {
      await worker.close();
      await connection.quit().catch(() => undefined);
    },
  };
}
