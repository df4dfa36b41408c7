// Readiness of the gateway's dependencies, each checked with a short timeout.
import type { Redis } from 'ioredis';
import type { IdentityApi } from './identity-client.js';

function within<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error('timeout')), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** Identity's gRPC health and a Redis PING, as 'ok' or 'down' each. */
export function readiness(identity: Pick<IdentityApi, 'checkHealth'>, redis: Pick<Redis, 'ping'>, timeoutMs = 2000) {
  return async (): Promise<Record<string, 'ok' | 'down'>> => {
    const [id, rd] = await Promise.allSettled([identity.checkHealth(timeoutMs), within(redis.ping(), timeoutMs)]);
    return { identity: id.status === 'fulfilled' ? 'ok' : 'down', redis: rd.status === 'fulfilled' ? 'ok' : 'down' };
  };
}
