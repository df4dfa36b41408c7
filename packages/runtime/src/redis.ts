// Redis connection (ioredis) with the service's key prefix applied to every
// command, so tests and tenants share one server without colliding. Every
// connection has an error listener (without one ioredis prints "[ioredis]
// Unhandled error event" for each failed reconnect): with a logger, one line
// when Redis becomes unreachable and one when it is back (OutageLog).
import { Redis } from 'ioredis';
import type { Logger } from './logger.js';
import { OutageLog } from './outage.js';

export function connectRedis(url: string, prefix: string, logger?: Logger): Redis {
  const redis = new Redis(url, {
    keyPrefix: prefix,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    connectTimeout: 5000,
    lazyConnect: false,
    // Reconnect promptly once Redis is back: 50 ms growing to at most 1 s.
    retryStrategy: (times) => Math.min(1000, 50 * times),
  });
  watchRedis(redis, logger);
  return redis;
}

/** Attaches the error listener and, with a logger, the outage lines to any ioredis client. */
export function watchRedis(redis: Redis, logger?: Logger, what = 'redis'): void {
  const outage = logger ? new OutageLog(logger, what) : undefined;
  redis.on('error', (err: unknown) => outage?.failed(err));
  redis.on('ready', () => outage?.ok());
}

export type { Redis };
