// Chat service entry point.
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
  connectNats,
  createLogger,
  ensureStream,
  runService,
  runStoreCommand,
  startOpsServer,
  systemClock,
} from '@bil/runtime';
import { loadBlobProto, loadChatProto } from '@bil/proto';
import { loadChatConfig } from './config.js';
import { migrations } from './infra/migrations/index.js';
import { chatReadModels } from './app/projections/read-models.js';
import { ChatApp } from './app/chat-app.js';
import { chatIntegrationEvent } from './infra/integration-events.js';
import { identityDirectoryConsumer } from './infra/identity-directory.js';
import { chatHandlers } from './grpc/handlers.js';
import { blobHandlers } from './grpc/blob-handlers.js';
import { BlobStore } from './app/blobs/blob-store.js';
import { createBlobBackend } from './infra/blob-backend.js';
import { startBlobCollector } from './app/blobs/collector.js';
import { startExpiryJob } from './app/retention/expiry.js';

const command = process.argv[2] ?? 'serve';

void runService('chat', async (life) => {
  const config = loadChatConfig(process.env, { requireSecrets: command === 'serve' });
  const logger = createLogger('chat', config.LOG_LEVEL);
  const db = await Database.connect({ url: config.DATABASE_URL, schema: 'chat', migrations, logger, poolMax: config.CHAT_DB_POOL_MAX });
  life.onShutdown('database', () => db.close());

  const store = new EventStore(db, [chatReadModels]);
  if (await runStoreCommand(command, { db, store, logger, migrateOnStart: config.CHAT_MIGRATE_ON_START })) {
    await db.close();
    process.exit(0);
  }

  const metrics = new Metrics('chat');
  const nats = await connectNats(config.NATS_URL, config.NATS_SUBJECT_PREFIX, 'chat', { streamReplicas: config.NATS_STREAM_REPLICAS });
  life.onShutdown('nats', () => nats.nc.drain());
  await ensureStream(nats, 'chat');

  const relay = new OutboxRelay({ db, nats, logger, metrics, toMessage: (e) => chatIntegrationEvent(nats.prefix, e) });
  relay.attach(store);
  relay.start();
  life.onShutdown('outbox relay', () => relay.stop());

  const app = new ChatApp(db, store, { maxGroupMembers: config.CHAT_MAX_GROUP_MEMBERS }, logger);

  const expiry = startExpiryJob(db, systemClock, logger, config.CHAT_EXPIRY_INTERVAL_MS);
  life.onShutdown('expiry job', () => expiry.stop());

  const directory = identityDirectoryConsumer({ nats, db, logger, app });
  await directory.start();
  life.onShutdown('identity consumer', () => directory.stop());

  // A 1,024-member epoch record with its wrapped keys is a few MiB.
  const grpc = new GrpcServer({ logger, metrics, maxReceiveBytes: 16 * 1024 * 1024, auth: ServiceAuth.fromConfig('chat', config, logger) });
  const proto = loadChatProto();
  grpc.add('bil.chat.v1.ChatService', proto.bil.chat.v1.ChatService.service, chatHandlers(app));
  const blobBackend = await createBlobBackend(config, db);
  const blobs = new BlobStore(db, blobBackend, { quotaBytes: config.CHAT_BLOB_QUOTA_BYTES });
  grpc.add('bil.chat.v1.BlobService', loadBlobProto().bil.chat.v1.BlobService.service, blobHandlers(blobs));
  const collector = startBlobCollector(
    db,
    blobBackend,
    {
      graceMs: config.CHAT_BLOB_GRACE_SECONDS * 1000,
      uploadTtlMs: config.CHAT_BLOB_UPLOAD_TTL_SECONDS * 1000,
      intervalMs: config.CHAT_BLOB_COLLECT_INTERVAL_SECONDS * 1000,
    },
    logger,
  );
  life.onShutdown('blob collector', () => collector.stop());
  const grpcPort = await grpc.listen(config.CHAT_GRPC_HOST, config.CHAT_GRPC_PORT);
  life.onShutdown('grpc', () => grpc.shutdown());

  const ops = await startOpsServer({
    port: config.CHAT_METRICS_PORT,
    host: config.METRICS_HOST,
    metrics,
    ready: async () => {
      await db.ping();
      if (nats.nc.isClosed()) throw new Error('NATS connection closed');
    },
  });
  life.onShutdown('ops server', () => new Promise<void>((r) => ops.close(() => r())));
  logger.info({ grpcPort, metricsPort: config.CHAT_METRICS_PORT }, `chat listening on gRPC :${grpcPort}`);
  return logger;
});
