// Identity service entry point.
//   node dist/main.js                      serve gRPC (and /metrics) until SIGINT/SIGTERM
//   node dist/main.js migrate              apply pending migrations and exit
//   node dist/main.js rebuild-projections  rebuild the read models from the events and exit
import {
  Database,
  EventStore,
  GrpcServer,
  ServiceAuth,
  Metrics,
  OutboxRelay,
  RevocationList,
  connectNats,
  connectRedis,
  createLogger,
  ensureStream,
  runService,
  runStoreCommand,
  startOpsServer,
  systemClock,
} from '@bil/runtime';
import { loadIdentityProto } from '@bil/proto';
import { loadIdentityConfig } from './config.js';
import { migrations } from './infra/migrations/Migration20261125000001.js';
import { identityReadModels } from './app/projections/read-models.js';
import { IdentityApp } from './app/identity-app.js';
import { TokenSigner } from './app/tokens.js';
import { identityIntegrationEvent } from './infra/integration-events.js';
import { natsHints } from './infra/hints.js';
import { identityHandlers } from './grpc/handlers.js';

const command = process.argv[2] ?? 'serve';

void runService('identity', async (life) => {
  const config = loadIdentityConfig(process.env, { requireSecrets: command !== 'migrate' });
  const logger = createLogger('identity', config.LOG_LEVEL);
  const db = await Database.connect({ url: config.DATABASE_URL, schema: 'identity', migrations, logger });
  life.onShutdown('database', () => db.close());

  const store = new EventStore(db, [identityReadModels]);
  if (await runStoreCommand(command, { db, store, logger, migrateOnStart: config.IDENTITY_MIGRATE_ON_START })) {
    await db.close();
    process.exit(0);
  }

  const metrics = new Metrics('identity');
  const redis = connectRedis(config.REDIS_URL, config.REDIS_PREFIX, logger);
  life.onShutdown('redis', () => void redis.disconnect());
  const nats = await connectNats(config.NATS_URL, config.NATS_SUBJECT_PREFIX, 'identity', { streamReplicas: config.NATS_STREAM_REPLICAS });
  life.onShutdown('nats', () => nats.nc.drain());
  await ensureStream(nats, 'identity');

  const relay = new OutboxRelay({
    db,
    nats,
    logger,
    metrics,
    toMessage: (e) => identityIntegrationEvent(nats.prefix, e),
  });
  relay.attach(store);
  relay.start();
  life.onShutdown('outbox relay', () => relay.stop());

  if (!config.IDENTITY_JWT_PRIVATE_KEY) {
    logger.warn('IDENTITY_JWT_PRIVATE_KEY is not set: using a key made for this process only (access tokens stop verifying on restart; refresh still works)');
  }
  const previous = config.IDENTITY_JWT_PREVIOUS_PUBLIC_KEYS.match(/-----BEGIN PUBLIC KEY-----[\s\S]+?-----END PUBLIC KEY-----/g) ?? [];
  const signer = await TokenSigner.create(config.IDENTITY_JWT_PRIVATE_KEY, previous, config.ACCESS_TOKEN_TTL_SECONDS);
  const revocations = new RevocationList(redis, config.ACCESS_TOKEN_TTL_SECONDS + 120);
  const app = new IdentityApp(
    db,
    store,
    signer,
    revocations,
    {
      refreshTtlSeconds: config.REFRESH_TOKEN_TTL_SECONDS,
      maxDevicesPerUser: config.IDENTITY_MAX_DEVICES_PER_USER,
      scrypt: { log2N: config.IDENTITY_SCRYPT_LOG2N, r: 8, p: 1 },
      pushEndpointHosts: config.PUSH_ENDPOINT_HOSTS,
      hashQueue: { concurrency: config.IDENTITY_HASH_CONCURRENCY, maxQueued: config.IDENTITY_HASH_QUEUE, perAccount: config.IDENTITY_HASH_PER_ACCOUNT },
    },
    logger,
    systemClock,
    natsHints(nats, logger),
  );

  const grpc = new GrpcServer({ logger, metrics, maxReceiveBytes: 256 * 1024, auth: ServiceAuth.fromConfig('identity', config, logger) });
  const proto = loadIdentityProto();
  grpc.add('bil.identity.v1.IdentityService', proto.bil.identity.v1.IdentityService.service, identityHandlers(app));
  const grpcPort = await grpc.listen(config.IDENTITY_GRPC_HOST, config.IDENTITY_GRPC_PORT);
  life.onShutdown('grpc', () => grpc.shutdown());

  const ops = await startOpsServer({
    port: config.IDENTITY_METRICS_PORT,
    host: config.METRICS_HOST,
    metrics,
    ready: async () => {
      await db.ping();
      await redis.ping();
      if (nats.nc.isClosed()) throw new Error('NATS connection closed');
    },
  });
  life.onShutdown('ops server', () => new Promise<void>((r) => ops.close(() => r())));
  logger.info({ grpcPort, metricsPort: config.IDENTITY_METRICS_PORT }, `identity listening on gRPC :${grpcPort}`);
  return logger;
});
