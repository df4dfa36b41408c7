// Redis connection (ioredis) with the service's key prefix applied to every
// command, so tests and tenants share one server without colliding.
import { Redis } from 'ioredis';

export function connectRedis(url: string, prefix: string): Redis {
  return new Redis(url, {
    keyPrefix: prefix,
    maxRetriesPerRequest: 2,
    enableOfflineQueue: true,
    connectTimeout: 5000,
    lazyConnect: false,
  });
}

export type { Redis };
