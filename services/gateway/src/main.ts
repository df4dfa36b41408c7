// Starts the gateway: config, logger, Redis, the identity, chat and digest clients, the REST API
// and the internal metrics server; closes them in reverse order on SIGTERM.
import {
  Metrics,
  LiveRevocations,
  ServiceAuth,
  connectRedis,
  createLogger,
  runService,
  startOpsServer,
} from '@bil/runtime';
import { buildApp } from './app.js';
import { AccessTokenVerifier, JwksCache } from './auth.js';
import { loadGatewayConfig } from './config.js';
import { createChatClient } from './chat-client.js';
import { createBlobClient } from './blob-client.js';
import { createDigestClient } from './digest-client.js';
import { createIdentityClient } from './identity-client.js';
import { RateLimiter } from './rate-limit.js';
import { blockingDown, readiness, reportingDependencies } from './readiness.js';
import { attachWsProxy, ipcHandoff } from './ws-proxy.js';
import { DEFAULT_WEB_DIR, openWebApp, parseModelOrigins } from './web-app.js';

await runService('gateway', async (life) => {
  const config = loadGatewayConfig();
  const logger = createLogger('gateway', config.LOG_LEVEL);
  const metrics = new Metrics('gateway');

  const redis = connectRedis(config.REDIS_URL, config.REDIS_PREFIX, logger);
  life.onShutdown('redis', async () => {
    await redis.quit().catch(() => redis.disconnect());
  });
  // Every call to identity, chat and digest is signed (docs/architecture.md, "Service-to-service authentication").
  const auth = ServiceAuth.fromConfig('gateway', config, logger);
  const identity = createIdentityClient(config.IDENTITY_GRPC_URL, config.IDENTITY_TIMEOUT_MS, auth);
  life.onShutdown('identity client', () => identity.close());
  const chat = createChatClient(config.CHAT_GRPC_URL, config.CHAT_TIMEOUT_MS, auth);
  life.onShutdown('chat client', () => chat.close());
  const blob = createBlobClient(config.CHAT_GRPC_URL, config.CHAT_TIMEOUT_MS, auth);
  life.onShutdown('blob client', () => blob.close());
  const digest = createDigestClient(config.DIGEST_GRPC_URL, config.DIGEST_TIMEOUT_MS, auth);
  life.onShutdown('digest client', () => digest.close());

  const jwks = new JwksCache({
    fetch: () => identity.getJwks(),
    minRefreshIntervalMs: config.JWKS_REFRESH_MIN_INTERVAL_MS,
  });
  // The revocation list mirrored in memory (kept current over Redis pub/sub; asks Redis while not synced):
  // no Redis round trip per request.
  const revocations = new LiveRevocations(redis);
  life.onShutdown('revocations', () => revocations.close());
  const verifier = new AccessTokenVerifier({ jwks, revocations });
  // Ready while it holds the token keys; each backend's and Redis' state is reported beside (readiness.ts).
  const ready = reportingDependencies(readiness({ identity, chat, digest }, redis, 2000, { token_keys: () => jwks.load() }), metrics);

  // The web client at / when it was built; the API alone otherwise (web-app.ts).
  const webDir = config.GATEWAY_WEB_DIR || DEFAULT_WEB_DIR;
  const web = openWebApp(webDir, { modelOrigins: parseModelOrigins(config.GATEWAY_WEB_MODEL_ORIGINS).origins });
  if (web) logger.info({ webDir: web.root }, `serving the web client from ${web.root}`);
  else logger.warn({ webDir }, `no web client at ${webDir} (no index.html): serving the API only; \`npm run build\` builds it`);

  const app = await buildApp({
    vapidPublicKey: config.PUSH_VAPID_PUBLIC_KEY || null,
    web,
    logger,
    identity,
    chat,
    blob,
    digest,
    verifier,
    limiter: new RateLimiter(redis, config.RATE_LIMIT_WINDOW_SECONDS),
    limits: { perIp: config.RATE_LIMIT_AUTH_PER_IP, perUsername: config.RATE_LIMIT_AUTH_PER_USERNAME, lookupsPerUser: config.RATE_LIMIT_USER_LOOKUPS_PER_USER },
    ready,
    bodyLimitBytes: config.GATEWAY_BODY_LIMIT_BYTES,
    bodyLimits: { message: config.GATEWAY_MESSAGE_BODY_LIMIT_BYTES, epoch: config.GATEWAY_EPOCH_BODY_LIMIT_BYTES, digest: config.GATEWAY_DIGEST_BODY_LIMIT_BYTES },
    trustProxyHops: config.GATEWAY_TRUST_PROXY ? config.GATEWAY_TRUST_PROXY_HOPS : 0,
    metrics,
    timeouts: { headersTimeoutMs: config.GATEWAY_HEADERS_TIMEOUT_MS, requestTimeoutMs: config.GATEWAY_REQUEST_TIMEOUT_MS },
    maxConnectionsPerAddress: config.GATEWAY_MAX_CONNECTIONS_PER_ADDRESS,
  });
  await app.listen({ host: config.GATEWAY_HOST, port: config.BIL_GATEWAY_PORT });
  life.onShutdown('http', () => app.close());
  life.onShutdown(
    'ws proxy',
    attachWsProxy(app.server, {
      targets: config.DELIVERY_WS_URL,
      logger,
      trustProxyHops: config.GATEWAY_TRUST_PROXY ? config.GATEWAY_TRUST_PROXY_HOPS : 0,
      handoff: config.GATEWAY_WS_HANDOFF === 'ipc' ? ipcHandoff(logger) : undefined,
    }),
  );

  if (config.GATEWAY_METRICS_PORT !== 0) {
    const ops = await startOpsServer({
      port: config.GATEWAY_METRICS_PORT,
      host: config.METRICS_HOST,
      metrics,
      ready: async () => {
        const down = blockingDown(await ready());
        if (down.length > 0) throw new Error(`${down.join(', ')} unavailable`);
      },
    });
    life.onShutdown('ops server', () => new Promise<void>((resolve) => ops.close(() => resolve())));
  }

  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.BIL_GATEWAY_PORT;
  const host = config.GATEWAY_HOST === '0.0.0.0' || config.GATEWAY_HOST === '::' ? '127.0.0.1' : config.GATEWAY_HOST;
  logger.info({ url: `http://${host}:${port}`, metricsPort: config.GATEWAY_METRICS_PORT }, `gateway listening on http://${host}:${port}`);
  return logger;
});
