// Delivery node entry point: `node dist/main.js` serves /v1/ws (and /metrics)
// until SIGINT/SIGTERM, then closes its sockets with 1001 so clients reconnect
// to another node and catch up.
import {
  AccessTokenVerifier,
  JwksCache,
  Metrics,
  RevocationList,
  ServiceAuth,
  connectNats,
  connectRedis,
  createLogger,
  runService,
  startOpsServer,
} from '@bil/runtime';
import { decodePushSubscriptionsChanged, pushSubscriptionsChangedSubject } from '@bil/proto/events';
import { loadDeliveryConfig } from './config.js';
import { createChatBackend, createJwksSource } from './infra/backends.js';
import { FanoutConsumer } from './infra/fanout-consumer.js';
import { AckStore, MembershipCache } from './infra/membership.js';
import { Presence } from './infra/presence.js';
import { adoptHandedOffSockets, startWsServer } from './infra/ws-server.js';
import { DigestFanout } from './app/digest-fanout.js';
import { Fanout } from './app/fanout.js';
import { Hub } from './app/hub.js';
import { deliveryMetrics } from './app/metrics.js';
import { PushNotifier } from './app/push/notifier.js';
import { PushDirectory, createPushSubscriptionSource } from './infra/push/push-directory.js';
import { PushGate } from './infra/push/push-gate.js';
import { WebPushSender } from './infra/push/web-push-sender.js';

await runService('delivery', async (life) => {
  const config = loadDeliveryConfig();
  const logger = createLogger('delivery', config.LOG_LEVEL).child({ node: config.nodeId });
  const metrics = new Metrics('delivery');
  const dm = deliveryMetrics(metrics);

  const redis = connectRedis(config.REDIS_URL, config.REDIS_PREFIX, logger);
  life.onShutdown('redis', async () => {
    await redis.quit().catch(() => redis.disconnect());
  });
  const nats = await connectNats(config.NATS_URL, config.NATS_SUBJECT_PREFIX, `delivery-${config.nodeId}`, { streamReplicas: config.NATS_STREAM_REPLICAS });
  life.onShutdown('nats', () => nats.nc.drain());
  const auth = ServiceAuth.fromConfig('delivery', config, logger);
  const chat = createChatBackend(config.CHAT_GRPC_URL, config.CHAT_TIMEOUT_MS, auth);
  life.onShutdown('chat client', () => chat.close());
  const jwksSource = createJwksSource(config.IDENTITY_GRPC_URL, auth);
  life.onShutdown('identity client', () => jwksSource.close());

  const jwks = new JwksCache({ fetch: jwksSource.fetch, minRefreshIntervalMs: config.JWKS_REFRESH_MIN_INTERVAL_MS });
  // The revocation TTL only matters to writers (identity); delivery reads.
  const revocations = new RevocationList(redis, 1);
  // No cache of verified tokens here: a socket presents its token once (at the upgrade, or in an
  // `auth` frame with a new one), so remembering it would only cost ~1 KiB per idle socket.
  const verifier = new AccessTokenVerifier({ jwks, revocations, verifiedCacheSize: 0 });

  const presence = new Presence(redis, config.nodeId, config.DELIVERY_PRESENCE_TTL_SECONDS * 1000);
  const membership = new MembershipCache(redis, chat, config.DELIVERY_MEMBERSHIP_TTL_SECONDS * 1000);
  const acks = new AckStore(redis, config.DELIVERY_ACK_TTL_SECONDS);
  const hub = new Hub({
    nodeId: config.nodeId,
    nc: nats.nc,
    prefix: nats.prefix,
    presence,
    membership,
    acks,
    chat,
    revocations,
    verify: (t) => verifier.verify(t),
    settings: {
      nodeId: config.nodeId,
      maxBufferedBytes: config.DELIVERY_MAX_BUFFERED_BYTES,
      maxPendingFrames: config.DELIVERY_MAX_PENDING_FRAMES,
      maxFrameBytes: config.DELIVERY_MAX_FRAME_BYTES,
      syncTimeoutMs: config.DELIVERY_SYNC_TIMEOUT_MS,
      reorderWaitMs: config.DELIVERY_REORDER_WAIT_MS,
      pingIntervalMs: config.DELIVERY_PING_INTERVAL_MS,
      heartbeatMs: config.DELIVERY_HEARTBEAT_MS,
      revocationCheckMs: config.DELIVERY_REVOCATION_CHECK_MS,
      catchUpConcurrency: config.DELIVERY_CATCHUP_CONCURRENCY,
    },
    metrics: dm,
    logger,
  });
  hub.start();
  // A Redis that comes back (restarted, failed over) may have lost presence: write it back now, not at the next heartbeat.
  redis.on('ready', () => void hub.reregister());

  let push: PushNotifier | undefined;
  if (config.PUSH_VAPID_PUBLIC_KEY && config.PUSH_VAPID_PRIVATE_KEY) {
    const source = createPushSubscriptionSource(config.IDENTITY_GRPC_URL, auth);
    life.onShutdown('push subscriptions client', () => source.close());
    const directory = new PushDirectory(source, { noneMs: config.PUSH_NO_SUBSCRIPTION_CACHE_MS, knownMs: config.PUSH_SUBSCRIPTION_CACHE_MS });
    // A revoked device's subscription is deleted at identity; the remembered copies go at once (every node hears it).
    for (const subject of ['identity.v1.device.revoked', 'identity.v1.user.deleted']) {
      nats.nc.subscribe(`${nats.prefix}${subject}`, { callback: () => directory.forgetAll() });
    }
    // A subscription set or removed is used (or dropped) from the next message, not after the cache's time limit.
    nats.nc.subscribe(pushSubscriptionsChangedSubject(nats.prefix), {
      callback: (err, msg) => {
        if (err) return;
        let hint;
        try {
          hint = decodePushSubscriptionsChanged(msg.json());
        } catch {
          // not JSON: not a hint
        }
        if (hint) directory.forgetUser(hint.userId);
      },
    });
    push = new PushNotifier(
      {
        directory,
        gate: new PushGate(redis, config.PUSH_MIN_INTERVAL_MS, config.PUSH_TTL_SECONDS * 1000 + config.PUSH_MIN_INTERVAL_MS),
        sender: new WebPushSender(
          { publicKey: config.PUSH_VAPID_PUBLIC_KEY, privateKey: config.PUSH_VAPID_PRIVATE_KEY, subject: config.PUSH_VAPID_SUBJECT },
          { ttlSeconds: config.PUSH_TTL_SECONDS, timeoutMs: config.PUSH_TIMEOUT_MS },
        ),
        logger,
        count: (outcome) => dm.pushes.inc({ outcome }),
      },
      { retryDelayMs: config.PUSH_RETRY_DELAY_MS, maxInFlight: 1000 },
    );
    life.onShutdown('push notifier', () => push!.stop());
  } else {
    logger.info('push notifications are off (PUSH_VAPID_PUBLIC_KEY is not set)');
  }
  const fanout = new Fanout(nats.prefix, hub, membership, dm, logger, push);
  const consumer = new FanoutConsumer({ nats, logger, context: 'chat', durable: 'delivery-fanout', ackWaitMs: config.DELIVERY_FANOUT_ACK_WAIT_MS, handle: (s, p) => fanout.handle(s, p) });
  await consumer.start();
  life.onShutdown('fan-out consumer', () => consumer.stop());
  const digestFanout = new DigestFanout(nats.prefix, hub, membership, dm, logger);
  const digestConsumer = new FanoutConsumer({ nats, logger, context: 'digest', durable: 'delivery-digest', ackWaitMs: config.DELIVERY_FANOUT_ACK_WAIT_MS, handle: (s, p) => digestFanout.handle(s, p) });
  await digestConsumer.start();
  life.onShutdown('digest consumer', () => digestConsumer.stop());

  const ws = await startWsServer({
    host: config.DELIVERY_HOST,
    port: config.DELIVERY_WS_PORT,
    maxFrameBytes: config.DELIVERY_MAX_FRAME_BYTES,
    verify: (t) => verifier.verify(t),
    accept: (socket, actor) => hub.accept(socket, actor),
    logger,
    headersTimeoutMs: config.DELIVERY_HEADERS_TIMEOUT_MS,
    maxConnectionsPerAddress: config.DELIVERY_MAX_CONNECTIONS_PER_ADDRESS,
  });
  if (config.DELIVERY_WS_HANDOFF === 'ipc') adoptHandedOffSockets(ws, logger);
  life.onShutdown('websocket server', async () => {
    await hub.stop();
    await ws.close();
  });

  if (config.DELIVERY_METRICS_PORT !== 0) {
    const ops = await startOpsServer({
      port: config.DELIVERY_METRICS_PORT,
      host: config.METRICS_HOST,
      metrics,
      ready: async () => {
        await redis.ping();
        if (nats.nc.isClosed()) throw new Error('NATS connection closed');
      },
    });
    life.onShutdown('ops server', () => new Promise<void>((r) => ops.close(() => r())));
  }
  logger.info({ port: ws.port, node: config.nodeId, metricsPort: config.DELIVERY_METRICS_PORT }, `delivery listening on ws://${config.DELIVERY_HOST}:${ws.port}/v1/ws`);
  return logger;
});
