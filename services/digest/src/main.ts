// Digest service entry point.
//   node dist/main.js                      serve gRPC, relay events, consume identity/chat, sweep (until SIGINT/SIGTERM)
//   node dist/main.js worker               run a summarising worker (scale these out)
//   node dist/main.js migrate              apply pending migrations and exit
//   node dist/main.js rotate-key           issue a new digest key now and exit (older keys open requests until they expire)
//   node dist/main.js rebuild-projections  rebuild the read models from the events and exit
//   node dist/main.js service-key          print the public service identity key (what clients configure) and its fingerprint
import { useNodeCrypto } from '@bil/crypto/node';
import { createLogger, runService, startOpsServer } from '@bil/runtime';
import { loadDigestConfig } from './config.js';
import { buildSummarizer, migrateOnly, openCore, startApi, startWorker } from './system.js';
import { serviceKey, serviceKeyText } from './service-key.js';

const command = process.argv[2] ?? 'serve';
const COMMANDS = ['serve', 'worker', 'migrate', 'rotate-key', 'rebuild-projections', 'service-key'];

void runService(command === 'worker' ? 'digest-worker' : 'digest', async (life) => {
  const config = loadDigestConfig(process.env, { requireSecrets: command !== 'migrate' && command !== 'service-key' });
  const logger = createLogger(command === 'worker' ? 'digest-worker' : 'digest', config.LOG_LEVEL);
  if (!COMMANDS.includes(command)) throw new Error(`unknown command "${command}" (${COMMANDS.join(', ')})`);
  if (command === 'migrate') {
    await migrateOnly(config, logger);
    process.exit(0);
  }
  useNodeCrypto();
  if (command === 'service-key') {
    process.stdout.write(`${serviceKeyText(serviceKey(config))}\n`);
    process.exit(0);
  }

  // Workers never migrate: the API process (or the Helm Job) does.
  const core = await openCore(config, logger, { migrate: command !== 'worker' && config.DIGEST_MIGRATE_ON_START });
  life.onShutdown('database', () => core.close());

  if (command === 'rotate-key') {
    const key = await core.keys.rotate();
    logger.info({ keyId: key.keyId, expiresAt: new Date(key.expiresAt).toISOString() }, 'digest key rotated');
    await core.close();
    process.exit(0);
  }
  if (command === 'rebuild-projections') {
    const n = await core.store.rebuildProjections();
    logger.info({ events: n }, 'projections rebuilt');
    await core.close();
    process.exit(0);
  }

  if (command === 'worker') {
    const w = startWorker(config, logger, core, buildSummarizer(config, logger));
    life.onShutdown('worker', () => w.stop());
    const ops = await startOpsServer({
      port: config.DIGEST_WORKER_METRICS_PORT,
      host: config.METRICS_HOST,
      metrics: w.metrics,
      ready: async () => {
        await core.db.ping();
        if (!(await w.worker.isRunning())) throw new Error('worker not running');
      },
    });
    life.onShutdown('ops server', () => new Promise<void>((r) => ops.close(() => r())));
    logger.info({ concurrency: config.DIGEST_WORKER_CONCURRENCY, summarizer: config.OPENAI_API_KEY ? 'llm' : 'extractive' }, 'digest worker started');
    return logger;
  }

  const api = await startApi(config, logger, core);
  life.onShutdown('api', () => api.stop());
  const ops = await startOpsServer({
    port: config.DIGEST_METRICS_PORT,
    host: config.METRICS_HOST,
    metrics: api.metrics,
    ready: async () => {
      await core.db.ping();
      if (api.nats.nc.isClosed()) throw new Error('NATS connection closed');
      if (api.redis.status !== 'ready') throw new Error('Redis not ready');
    },
  });
  life.onShutdown('ops server', () => new Promise<void>((r) => ops.close(() => r())));
  logger.info({ grpcPort: api.grpcPort, metricsPort: config.DIGEST_METRICS_PORT }, `digest listening on gRPC :${api.grpcPort}`);
  return logger;
});
